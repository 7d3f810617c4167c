"""The compiled sampling loop: chunks of a jitted `lax.scan`, chains by `vmap`; no I/O.

One program serves warmup and sampling. A chunk is a scan over `slots` draw slots; slot i runs
`counts[i]` sampler steps (a `fori_loop`) and emits the position after them. Sampling chunks use
`counts = thin`, so only kept draws are materialised; a warmup chunk runs all its steps in the
first slot (one flat loop) and its outputs are dropped. Each call costs ~0.1-0.2 ms on a CPU,
so warmup chunks grow until a chunk takes about `target_seconds`. The key of global step t of
a chain is `fold_in(chain_key, t)`, independent of how the run is cut into chunks.

The loop also tracks, per sampled leaf and chain, the first step at which the leaf became
non-finite (-1 while finite); the host checks it after every chunk.
"""

import time
from typing import Iterator, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from headbayes.samplers import Sampler

__all__ = ["Chunk", "LoopState", "warmup_chunk", "sampling_chunks", "choose_slots", "init_loop",
           "compile_loop", "run_loop", "first_nonfinite"]


class Chunk(NamedTuple):
    start_step: int
    counts: np.ndarray  # int32 (slots,), steps run in each slot
    num_draws: int  # leading slots whose output is a kept draw (0 during warmup)


class LoopState(NamedTuple):
    sampler_state: object
    first_bad_step: object  # pytree like the position, int32 per leaf, -1 while finite


def warmup_chunk(start_step: int, num_steps: int, slots: int) -> Chunk:
    counts = np.zeros(slots, np.int32)
    counts[0] = num_steps
    return Chunk(start_step, counts, 0)


def sampling_chunks(start_step: int, keep: int, thin: int, slots: int) -> list[Chunk]:
    """Chunks of up to `slots` kept draws, one every `thin` steps."""
    chunks = []
    for first in range(0, keep, slots):
        counts = np.zeros(slots, np.int32)
        draws = min(slots, keep - first)
        counts[:draws] = thin
        chunks.append(Chunk(start_step + first * thin, counts, draws))
    return chunks


def choose_slots(keep: int, num_chains: int, sampled_size: int, max_slots: int = 1000,
                 max_bytes: int = 64 * 2**20) -> int:
    """Draw slots per chunk: up to `max_slots`, with the chunk's draws under `max_bytes`."""
    by_memory = max_bytes // max(1, 4 * num_chains * sampled_size)
    return int(max(1, min(keep, max_slots, by_memory)))


def init_loop(sampler: Sampler, position, seed: int, num_chains: int):
    """(LoopState, chain_keys): every chain starts at `position`; keys split from PRNGKey(seed)."""

    @jax.jit
    def init(position, seed):
        batched = jax.tree.map(lambda x: jnp.broadcast_to(x, (num_chains,) + x.shape), position)
        first_bad = jax.tree.map(lambda x: jnp.full((num_chains,), -1, jnp.int32), position)
        keys = jax.random.split(jax.random.PRNGKey(seed), num_chains)
        return LoopState(jax.vmap(sampler.init)(batched), first_bad), keys

    return init(position, np.int32(seed))


def _make_chunk_fn(sampler: Sampler):
    def run_chain(state: LoopState, chain_key, start_step, counts, problem, hyper):
        def one_step(_, carry):
            state, t = carry
            key = jax.random.fold_in(chain_key, t)
            sampler_state, _info = sampler.step(key, state.sampler_state, problem, hyper)
            first = jax.tree.map(
                lambda f, x: jnp.where((f < 0) & ~jnp.all(jnp.isfinite(x)), t, f),
                state.first_bad_step, sampler_state.position)
            return LoopState(sampler_state, first), t + 1

        def slot(carry, count):
            carry = jax.lax.fori_loop(0, count, one_step, carry)
            return carry, carry[0].sampler_state.position

        (state, _), draws = jax.lax.scan(slot, (state, start_step), counts)
        return state, draws

    return jax.vmap(run_chain, in_axes=(0, 0, None, None, None, None))


def compile_loop(sampler: Sampler, state: LoopState, chain_keys, problem, hyper, slots: int):
    """Trace and compile the chunk program ahead of time; returns (compiled, seconds)."""
    start = time.perf_counter()
    counts = jnp.zeros(slots, jnp.int32)
    compiled = (jax.jit(_make_chunk_fn(sampler))
                .lower(state, chain_keys, jnp.int32(0), counts, problem, hyper).compile())
    return compiled, time.perf_counter() - start


def run_loop(compiled, state: LoopState, chain_keys, problem, hyper, *, warmup: int,
             keep: int, thin: int, slots: int,
             target_seconds: float = 0.5) -> Iterator[tuple[Chunk, LoopState, object]]:
    """Run warmup then sampling chunks; yield (chunk, state after it, kept draws or None).

    Kept draws are numpy arrays with axes (chain, draw, *leaf_shape).
    """
    step, size = 0, slots * thin
    while step < warmup:
        chunk = warmup_chunk(step, min(size, warmup - step), slots)
        start = time.perf_counter()
        state, _ = _call(compiled, state, chain_keys, problem, hyper, chunk)
        jax.block_until_ready(state)
        elapsed = time.perf_counter() - start
        size = max(size, int(chunk.counts[0] / max(elapsed, 1e-6) * target_seconds))
        step += int(chunk.counts[0])
        yield chunk, state, None
    for chunk in sampling_chunks(step, keep, thin, slots):
        state, draws = _call(compiled, state, chain_keys, problem, hyper, chunk)
        yield chunk, state, jax.tree.map(lambda d, n=chunk.num_draws: np.asarray(d)[:, :n], draws)


def _call(compiled, state, chain_keys, problem, hyper, chunk: Chunk):
    return compiled(state, chain_keys, np.int32(chunk.start_step), chunk.counts, problem, hyper)


def first_nonfinite(state: LoopState, names: dict) -> tuple[int, str, int] | None:
    """(step, leaf path, chain) of the earliest non-finite value, or None if all finite.

    `names` maps leaf paths to the leaves of `state.first_bad_step` (see `mask.named_leaves`).
    """
    found = None
    for path, steps in names.items():
        steps = np.asarray(steps)
        bad = np.argwhere(steps >= 0)
        for (chain,) in bad:
            candidate = (int(steps[chain]), path, int(chain))
            if found is None or candidate < found:
                found = candidate
    return found
