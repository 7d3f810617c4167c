"""The compiled sampling loop: chunks of one jitted program, chains by `vmap`; no I/O.

One program serves warmup and sampling. A chunk has `slots` draw slots; slot i runs
`counts[i]` sampler steps (a `fori_loop`) and emits the position after them, with the step
information summed over those steps (slot 0 adds to `carried`, the sums of a draw begun in
earlier calls). Only the leading slots with a nonzero count run; the others' outputs are
zeros. Sampling chunks use `counts = thin`, so only kept draws are materialised; a warmup
chunk runs all its steps in the first slot (one flat loop) and its draws are dropped. A run's
first call runs FIRST_CALL_STEPS steps; every later call is sized to take about
`target_seconds` (0.5 s) at the rate the previous one ran, and a sampling call holds at most
`slots` draws. A draw whose `thin` steps outlast a call runs in pieces of that size, each
passing its sums on to the next; only the call that ends the draw yields it. So a signal,
which is honoured between calls, waits about `target_seconds`, or one sampler step where a
step takes longer. Samplers that fit themselves (VI, Laplace) fit during these warmup steps.

Keys: chain c uses `split(split(PRNGKey(seed))[0], num_chains)[c]`; its step t uses
`fold_in(chain_key, t)`, independent of how the run is
cut into chunks. Over-dispersed starts add `init_jitter · N(0, 1)` to every chain's start, from
`split(PRNGKey(seed))[1]`.

With several devices (GPUs, or CPU devices forced with
`XLA_FLAGS=--xla_force_host_platform_device_count=N`) the chains are split across as many of them
as divide `num_chains` evenly (`shard_map` over a 1-D mesh); each chain computes exactly what it
would on one device.

Non-finite values: at the end of a call the loop checks the position after every slot (each
kept draw, and the end of a warmup call) and records, per sampled leaf and chain, the last step
of the first slot that left the leaf non-finite (-1 while finite). Checking every step would
cost about 5% of a small model's step; checking inside each slot cost 0.2 µs a slot more than
this one pass. A call that ends with such a record is run again from its start one step per
slot, so the record names the exact first step at which each leaf became non-finite;
`run_loop` then yields that state and stops.
"""

import time
from typing import Callable, Iterator, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from headbayes.core import xla
from headbayes.engine.exported import compile_program
from headbayes.engine.prngkeys import run_keys
from headbayes.engine.programs import kept
from headbayes.samplers.base import STEP_KEY, Info, Sampler

__all__ = ["Chunk", "LoopState", "InfoSums", "advance", "zero_sums", "finish_sums", "grow_chunk",
           "warmup_chunk", "sampling_chunk", "FIRST_CALL_STEPS",
           "choose_slots", "init_loop", "compile_loop", "run_loop",
           "first_nonfinite", "chain_mesh", "chain_device_count"]


class Chunk(NamedTuple):
    start_step: int
    counts: np.ndarray  # int32 (slots,), steps run in each slot
    num_draws: int  # leading slots whose output is a kept draw (0 during warmup)


class LoopState(NamedTuple):
    sampler_state: object
    first_bad_step: object  # pytree like the position, int32 per leaf, -1 while finite


class InfoSums(NamedTuple):
    """Step information summed over the steps of one slot (one kept draw)."""
    acceptance: jax.Array  # sum of acceptance rates
    divergences: jax.Array
    grad_evals: jax.Array
    steps: jax.Array
    step_size: jax.Array  # of the last step
    groups: tuple = ()  # a Gibbs sampler's: the sums of each group's own information


def zero_sums(num_groups: int = 0) -> InfoSums:
    return InfoSums(jnp.float32(0), jnp.int32(0), jnp.int32(0), jnp.int32(0), jnp.float32(0),
                    tuple(zero_sums() for _ in range(num_groups)))


def _add(sums: InfoSums, info: Info) -> InfoSums:
    return InfoSums(sums.acceptance + info.acceptance_rate,
                    sums.divergences + info.is_divergent.astype(jnp.int32),
                    sums.grad_evals + info.num_grad_evals, sums.steps + 1,
                    info.step_size.astype(jnp.float32),
                    tuple(_add(s, i) for s, i in zip(sums.groups, info.groups)))


FIRST_CALL_STEPS = 1  # steps of a run's first call, before any rate is measured


def grow_chunk(steps: int, seconds: float, target_seconds: float) -> int:
    """Steps for the next call: about `target_seconds` at the rate the last call ran (`steps`
    in `seconds`), at least 1 (a call that ran slowly makes the next one shorter, so a signal
    waits at most about `target_seconds`)."""
    return max(1, min(2**30, int(steps / max(seconds, 1e-6) * target_seconds)))


def warmup_chunk(start_step: int, num_steps: int, slots: int) -> Chunk:
    counts = np.zeros(slots, np.int32)
    counts[0] = num_steps
    return Chunk(start_step, counts, 0)


def sampling_chunk(start_step: int, draws: int, thin: int, slots: int) -> Chunk:
    """`draws` (<= `slots`) kept draws, one every `thin` steps, from `start_step`."""
    counts = np.zeros(slots, np.int32)
    counts[:draws] = thin
    return Chunk(start_step, counts, draws)


def choose_slots(keep: int, num_chains: int, sampled_size: int, max_slots: int = 1000,
                 max_bytes: int = 64 * 2**20) -> int:
    """Draw slots per chunk: up to `max_slots`, with the chunk's draws under `max_bytes`."""
    by_memory = max_bytes // max(1, 4 * num_chains * sampled_size)
    return int(max(1, min(keep, max_slots, by_memory)))


def init_loop(sampler: Sampler, position, problem, hyper, *, seed: int, num_chains: int,
              init_jitter: float = 0.0, reuse: str | None = None):
    """(LoopState, chain_keys): chains start at `position` (+ jitter), keys from PRNGKey(seed).
    `reuse`: as for `compile_loop` (the start's program, traced once in a sweep)."""
    chain_keys, jitter_key = run_keys(seed, num_chains)  # on the host: nothing to compile
    first_bad = jax.tree.map(lambda x: np.full((num_chains,), -1, np.int32), position)
    if sampler.trivial_init and init_jitter == 0:  # nothing to compute: skip a compilation
        batched = jax.tree.map(lambda x: _broadcast(x, num_chains), position)
        return LoopState(sampler.init(batched, problem, hyper), first_bad), chain_keys

    def make_init():
        @jax.jit  # traces again only for arguments of another structure, shape or dtype
        def init(position, problem, hyper, jitter_key, init_jitter):
            leaves, treedef = jax.tree.flatten(position)
            jitter_keys = jax.random.split(jitter_key, len(leaves))
            starts = [x + init_jitter * jax.random.normal(k, (num_chains,) + x.shape, x.dtype)
                      for x, k in zip(leaves, jitter_keys)]
            batched = jax.tree.unflatten(treedef, starts)
            return jax.vmap(sampler.init, in_axes=(0, None, None))(batched, problem, hyper)

        return init

    init = make_init() if reuse is None else kept(("init", reuse, num_chains), make_init)
    states = init(position, problem, hyper, jitter_key, np.float32(init_jitter))
    return LoopState(states, first_bad), chain_keys


def _broadcast(x, num_chains: int):
    """`x` repeated along a new leading chain axis: a numpy view (nothing to compile)."""
    return np.broadcast_to(x, (num_chains,) + x.shape)


def _track_nonfinite(first_bad, position, t):
    return jax.tree.map(lambda f, x: jnp.where((f < 0) & ~jnp.all(jnp.isfinite(x)), t, f),
                        first_bad, position)


def advance(sampler: Sampler, state: LoopState, key, t, problem, hyper, sums: InfoSums,
            track: bool = True):
    """The loop body, one chain: one sampler step with `key` at step `t`, the info sums and
    (with `track`) the non-finite record updated. Warmup, sampling and joint training all step
    with it. Samplers whose info never changes skip the per-step sums (~0.3 µs a step on CPU).
    The sampler's `hyper` also holds `t` as STEP_KEY: the same for every chain, so a sampler
    that branches on it (fit, then draw) runs one branch, not both (`vmap` turns a branch on a
    per-chain value into a select)."""
    sampler_state, info = sampler.step(key, state.sampler_state, problem,
                                       {**hyper, STEP_KEY: jnp.asarray(t, jnp.int32)})
    first = state.first_bad_step
    if track:
        first = _track_nonfinite(first, sampler_state.position, t)
    sums = sums if sampler.constant_info is not None else _add(sums, info)
    return LoopState(sampler_state, first), sums


def finish_sums(sampler: Sampler, sums: InfoSums, hyper, count) -> InfoSums:
    """The sums of `count` steps taken with `advance`: as added, or for samplers whose info
    never changes, `count` times that info."""
    if sampler.constant_info is None:
        return sums
    info = sampler.constant_info(hyper)
    return InfoSums(count * info.acceptance_rate, count * info.is_divergent.astype(jnp.int32),
                    count * info.num_grad_evals, jnp.asarray(count, jnp.int32), info.step_size)


def _make_chunk_fn(sampler: Sampler):
    constant = sampler.constant_info is not None  # the sums follow from the counts alone

    def run_chain(state: LoopState, chain_key, carried: InfoSums, start_step, counts, problem,
                  hyper):
        def one_step(_, carry):
            state, t, sums = carry
            key = jax.random.fold_in(chain_key, t)
            state, sums = advance(sampler, state, key, t, problem, hyper, sums, track=False)
            return state, t + 1, sums

        def fill(i, carry_and_outputs):  # slot i, its outputs written to row i
            (state, t), outputs = carry_and_outputs
            begun = jax.tree.map(lambda c, z: jnp.where(i == 0, c, z), carried,
                                 zero_sums(len(sampler.groups)))
            state, t, sums = jax.lax.fori_loop(0, counts[i], one_step, (state, t, begun))
            out = state.sampler_state.position if constant else (state.sampler_state.position,
                                                                   sums)
            return (state, t), jax.tree.map(lambda rows, o: rows.at[i].set(o), outputs, out)

        template = state.sampler_state.position
        if not constant:
            template = (template, zero_sums(len(sampler.groups)))
        outputs = jax.tree.map(lambda x: jnp.zeros(counts.shape + jnp.shape(x), jnp.result_type(x)),
                               template)
        active = jnp.sum(counts > 0)  # a chunk fills its leading slots; the rest stay zero
        (state, _), outputs = jax.lax.fori_loop(0, active, fill, ((state, start_step), outputs))
        if constant:  # slot 0 counts the steps of the draw's earlier pieces too
            totals = counts.at[0].add(jnp.where(counts[0] > 0, carried.steps, 0))
            positions, sums = outputs, _constant_sums(sampler, hyper, totals)
        else:
            positions, sums = outputs
        first = _first_bad_slot(state.first_bad_step, positions, start_step, counts)
        return state._replace(first_bad_step=first), (positions, sums)

    return jax.vmap(run_chain, in_axes=(0, 0, 0, None, None, None, None))


def _constant_sums(sampler: Sampler, hyper, counts) -> InfoSums:
    """Every slot's sums, for a sampler whose info never changes: rows of zeros past the
    active slots, as the per-slot sums would leave them."""
    rows = jax.vmap(lambda count: finish_sums(sampler, zero_sums(), hyper, count))(counts)
    return jax.tree.map(lambda r: jnp.where(counts > 0, r, jnp.zeros_like(r)), rows)


def _first_bad_slot(first_bad, positions, start_step, counts):
    """The non-finite record after a chunk, from the position after each slot (`positions`,
    rows per slot): a leaf still finite so far gets the last step of the first active slot
    that left it non-finite (what checking after every slot would record)."""
    last_steps = start_step + jnp.cumsum(counts) - 1
    active = counts > 0

    def record(f, rows):
        bad = active & ~jnp.all(jnp.isfinite(rows), axis=tuple(range(1, rows.ndim)))
        return jnp.where((f < 0) & jnp.any(bad), last_steps[jnp.argmax(bad)], f)

    return jax.tree.map(record, first_bad, positions)


def chain_device_count(num_chains: int, available: int) -> int:
    """The most devices, up to `available`, that divide `num_chains` evenly."""
    return max(d for d in range(1, available + 1) if num_chains % d == 0)


def chain_mesh(num_chains: int):
    """A 1-D mesh ("chains") over `chain_device_count` devices; None when that is one."""
    devices = jax.devices()
    count = chain_device_count(num_chains, len(devices))
    return None if count == 1 else jax.sharding.Mesh(np.array(devices[:count]), ("chains",))


def _compile(fn, args: tuple, num_chained: int, out_structure=None, stored=None):
    """Compile `fn(*args)` ahead of time. Its first `num_chained` arguments and all its outputs
    carry a leading chain axis; over several devices the chains are split across them and the
    returned callable places its arguments there (a no-op once they are). On one device,
    given its outputs' `out_structure`, it is compiled from its exported module, loaded from
    (or stored at) `stored` (`headbayes.engine.exported`)."""
    mesh = chain_mesh(jax.tree.leaves(args[1])[0].shape[0])
    if mesh is None:
        program = None
        if out_structure is not None:

            program = compile_program(fn, args, out_structure, stored)
        return program or xla.jit(fn).lower(*args).compile()
    spec = jax.sharding.PartitionSpec
    specs = tuple(spec("chains") if i < num_chained else spec() for i in range(len(args)))
    sharded = jax.shard_map(fn, mesh=mesh, in_specs=specs, out_specs=spec("chains"),
                            check_vma=False)
    shardings = tuple(jax.sharding.NamedSharding(mesh, s) for s in specs)
    compiled = xla.jit(sharded, in_shardings=shardings).lower(*args).compile()

    def call(*args):
        return compiled(*(jax.device_put(a, s) for a, s in zip(args, shardings)))

    return call


def compile_loop(sampler: Sampler, state: LoopState, chain_keys, problem, hyper, slots: int,
                 reuse: str | None = None, stored=None):
    """Trace and compile the chunk program ahead of time; returns (compiled, seconds).
    With `reuse` (a string naming everything the program depends on beyond its arguments:
    `programs.program_key`), a program compiled earlier in this process for the same `reuse`
    and the same argument structure, shapes and dtypes is returned without tracing again:
    the jobs of a sweep in one process compile once. `stored`: the path of the program on disk
    (`exported.program_path`), loaded instead of traced when it is there."""
    start = time.perf_counter()
    nothing_begun = jax.tree.map(lambda x: np.zeros(np.shape(chain_keys)[:1], x.dtype),
                                 zero_sums(len(sampler.groups)))
    args = (state, chain_keys, nothing_begun, np.int32(0), np.zeros(slots, np.int32), problem,
            hyper)

    def make():
        out_structure = jax.tree.structure(
            (state, (state.sampler_state.position, zero_sums(len(sampler.groups)))))
        program = _compile(_make_chunk_fn(sampler), args, 3, out_structure, stored)

        def call(state, chain_keys, start_step, counts, problem, hyper, carried=None):
            """`carried`: the sums of the draw slot 0 ends, from earlier calls (none: zeros)."""
            return program(state, chain_keys, nothing_begun if carried is None else carried,
                           start_step, counts, problem, hyper)

        call.source = getattr(program, "source", "traced")  # "loaded": from disk (exported.py)
        return call

    if reuse is None:
        return make(), time.perf_counter() - start
    leaves, treedef = jax.tree.flatten(args)
    signature = tuple((np.shape(x), str(getattr(x, "dtype", type(x))),
                       bool(getattr(x, "weak_type", False))) for x in leaves)
    key = ("chunk", reuse, str(treedef), signature, len(jax.devices()),
           tuple(sorted(xla.compiler_options().items())))
    return kept(key, make), time.perf_counter() - start


def run_loop(compiled, state: LoopState, chain_keys, problem, hyper, *, warmup: int,
             keep: int, thin: int, slots: int, start_step: int = 0,
             target_seconds: float = 0.5, stopping: Callable[[], bool] = lambda: False,
             ) -> Iterator[tuple[Chunk, LoopState, object, InfoSums]]:
    """Run warmup then sampling chunks from `start_step` (a committed chunk boundary, when
    resuming); yield (chunk, state, kept draws or None, info sums). Between the pieces of a
    draw that outlasts a call, `stopping()` true ends the loop without yielding the draw.

    Draws are numpy arrays with axes (chain, draw, *leaf_shape); info sums have axes
    (chain, draw) for sampling chunks and (chain,) for warmup. A chunk that leaves a
    non-finite value is the last: its state is the one at the first non-finite step, whose
    `first_bad_step` names that step exactly (`first_nonfinite`).
    """
    step = start_step
    size = FIRST_CALL_STEPS  # then sized to take about target_seconds each
    while step < warmup:
        chunk = warmup_chunk(step, min(size, warmup - step), slots)
        start = time.perf_counter()
        before, (state, (_, sums)) = state, _call(compiled, state, chain_keys, problem, hyper,
                                                  chunk)
        jax.block_until_ready(state)
        size = grow_chunk(int(chunk.counts[0]), time.perf_counter() - start, target_seconds)
        step += int(chunk.counts[0])
        sums = jax.tree.map(lambda s: np.asarray(s)[:, 0], sums)
        if _has_nonfinite(state):
            yield chunk, _replay(compiled, before, chain_keys, problem, hyper, chunk), None, sums
            return
        yield chunk, state, None, sums
    done = (step - warmup) // thin
    while done < keep:
        carried, draw_end = None, step + thin
        while draw_end - step > size:  # the draw outlasts a call: run a piece of it
            if stopping():
                return  # the draw is not kept: resuming runs it again from its start
            chunk = warmup_chunk(step, size, slots)
            start = time.perf_counter()
            before, (state, (_, sums)) = state, _call(compiled, state, chain_keys, problem,
                                                      hyper, chunk, carried)
            carried = jax.tree.map(lambda s: np.asarray(s)[:, 0], sums)
            size = grow_chunk(size, time.perf_counter() - start, target_seconds)
            step += int(chunk.counts[0])
            if _has_nonfinite(state):
                yield chunk, _replay(compiled, before, chain_keys, problem, hyper, chunk), None, \
                    carried
                return
        draws_now = 1 if carried is not None else min(slots, keep - done, max(1, size // thin))
        chunk = sampling_chunk(step, draws_now, min(thin, draw_end - step), slots)
        start = time.perf_counter()
        before, (state, (draws, sums)) = state, _call(compiled, state, chain_keys, problem,
                                                      hyper, chunk, carried)
        kept = lambda a, n=chunk.num_draws: np.asarray(a)[:, :n]  # noqa: E731
        draws, sums = jax.tree.map(kept, draws), jax.tree.map(kept, sums)
        steps = int(chunk.counts.sum())
        size = grow_chunk(steps, time.perf_counter() - start, target_seconds)
        step, done = step + steps, done + chunk.num_draws
        if _has_nonfinite(state):
            yield chunk, _replay(compiled, before, chain_keys, problem, hyper, chunk), draws, sums
            return
        yield chunk, state, draws, sums


def _call(compiled, state, chain_keys, problem, hyper, chunk: Chunk, carried=None):
    return compiled(state, chain_keys, np.int32(chunk.start_step), chunk.counts, problem, hyper,
                    carried)


def _has_nonfinite(state: LoopState) -> bool:
    return any(bool((np.asarray(f) >= 0).any()) for f in jax.tree.leaves(state.first_bad_step))


def _replay(compiled, state: LoopState, chain_keys, problem, hyper, chunk: Chunk) -> LoopState:
    """`chunk` run again from `state` (the state before it) one step per slot, up to the
    first step that leaves a non-finite value: the state there, its record exact. The steps
    are the same (a step's key depends on its number only), so they fail at the same place."""
    step, end = chunk.start_step, chunk.start_step + int(chunk.counts.sum())
    slots = len(chunk.counts)
    while step < end and not _has_nonfinite(state):
        single = sampling_chunk(step, min(slots, end - step), 1, slots)
        state, _ = _call(compiled, state, chain_keys, problem, hyper, single)
        step += single.num_draws
    return state


def first_nonfinite(state: LoopState, names: dict) -> tuple[int, str, int] | None:
    """(step, leaf path, chain) of the earliest non-finite value, or None if all finite.
    `names` maps leaf paths to the leaves of `state.first_bad_step` (see `mask.named_leaves`).
    """
    found = None
    for path, steps in names.items():
        steps = np.asarray(steps)
        for (chain,) in np.argwhere(steps >= 0):
            candidate = (int(steps[chain]), path, int(chain))
            if found is None or candidate < found:
                found = candidate
    return found
