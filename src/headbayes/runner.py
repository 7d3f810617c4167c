"""The compiled sampling loop: chunks of a jitted `lax.scan`, chains by `vmap`; no I/O.

One program serves warmup and sampling. A chunk is a scan over `slots` draw slots; slot i runs
`counts[i]` sampler steps (a `fori_loop`) and emits the position after them. Sampling chunks use
`counts = thin`, so only kept draws are materialised; warmup chunks spread their steps over the
slots and their outputs are dropped. The key of global step t of a chain is
`fold_in(chain_key, t)`, independent of how the run is cut into chunks.

The loop also tracks, per sampled leaf and chain, the first step at which the leaf became
non-finite (-1 while finite); the host checks it after every chunk.
"""

import time
from typing import Iterator, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from headbayes.samplers import Sampler

__all__ = ["Chunk", "LoopState", "plan_chunks", "init_loop", "compile_loop", "run_chunks",
           "first_nonfinite"]


class Chunk(NamedTuple):
    start_step: int
    counts: np.ndarray  # int32 (slots,), steps run in each slot
    num_draws: int  # leading slots whose output is a kept draw (0 during warmup)


class LoopState(NamedTuple):
    sampler_state: object
    first_bad_step: object  # pytree like the position, int32 per leaf, -1 while finite


def plan_chunks(warmup: int, keep: int, thin: int, slots: int) -> list[Chunk]:
    """Cut warmup + keep * thin steps into chunks of at most `slots * thin` steps."""
    chunks, step = [], 0
    remaining = warmup
    while remaining > 0:
        n = min(remaining, slots * thin)
        counts = np.full(slots, n // slots, np.int32)
        counts[: n % slots] += 1
        chunks.append(Chunk(step, counts, 0))
        step, remaining = step + n, remaining - n
    remaining = keep
    while remaining > 0:
        d = min(remaining, slots)
        counts = np.zeros(slots, np.int32)
        counts[:d] = thin
        chunks.append(Chunk(step, counts, d))
        step, remaining = step + d * thin, remaining - d
    return chunks


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


def run_chunks(compiled, state: LoopState, chain_keys, problem, hyper,
               chunks: list[Chunk]) -> Iterator[tuple[Chunk, LoopState, object]]:
    """Run chunks in order; yield (chunk, state after it, kept draws with axes (chain, draw, ...))."""
    for chunk in chunks:
        state, draws = compiled(state, chain_keys, jnp.int32(chunk.start_step),
                                jnp.asarray(chunk.counts), problem, hyper)
        draws = jax.tree.map(lambda d, n=chunk.num_draws: np.asarray(d)[:, :n], draws)
        yield chunk, state, draws


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
