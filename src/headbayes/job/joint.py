"""`body.mode: joint`: for `body.steps` steps, alternate a sampler step on the masked leaves with
an optax step on the body (every unmasked leaf), in one compiled loop; then freeze the body,
restart the sampler from the heads reached (fresh state, so HMC/NUTS adapt to the final body
during `sampler.warmup`), warm up and sample as usual.

What the body's gradient sees: at joint step t every chain c first takes its sampler step to
a new head θ_c; then the body b takes one optimiser step (`body.optimizer` at `body.lr`) on
    −( (1/C) Σ_c log p(y | b, θ_c) + log p(b) ),
the log-likelihood averaged over the C chains' current heads, plus the Gaussian prior on the
body. With one chain this is stochastic-EM-like training against the sampled head; with several
the body follows the average over chains, so all chains share one body. The sampler never sees
the body as part of its position (it only enters the log-density as a constant at each step),
and after the joint steps the body is frozen: every kept draw uses the same body, which is what
params.npz holds. Joint step t of chain c uses the key fold_in(fold_in(chain_key, 2³²−1), t),
a stream apart from the sampling steps' fold_in(chain_key, t).
"""

import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from headbayes.config.typed import RunConfig
from headbayes.core import xla
from headbayes.engine.runner import (FIRST_CALL_STEPS, LoopState, advance, finish_sums,
                                     grow_chunk, zero_sums)
from headbayes.job.pretrain import optimizer as body_optimizer
from headbayes.posterior.density import log_prior, make_logdensity_fn
from headbayes.posterior.likelihoods import make_likelihood

__all__ = ["make_joint_warmup", "compile_joint_warmup", "joint_chunks", "train_jointly",
           "restart", "JOINT_STREAM"]

JOINT_STREAM = 2**32 - 1


def make_joint_warmup(sampler, logdensity_fn: Callable, cfg: RunConfig):
    """A jitted `(state, chain_keys, body, opt_state, start, count, problem, hyper) ->
    (state, body, opt_state, sums)` running `count` joint warmup steps from step `start`."""
    import optax

    optimizer = body_optimizer(cfg.body.optimizer, cfg.body.lr)

    def objective(body, positions, problem):
        at_body = problem._replace(frozen=body)
        per_chain = jax.vmap(lambda position: logdensity_fn(position, at_body))(positions)
        return -(jnp.mean(per_chain) + log_prior(body, problem.prior_sigma))

    def run(state: LoopState, chain_keys, body, opt_state, start, count, problem, hyper):
        def one(i, carry):
            state, body, opt_state, sums = carry
            t = start + i
            keys = jax.vmap(lambda k: jax.random.fold_in(jax.random.fold_in(k, JOINT_STREAM), t)
                            )(chain_keys)
            at_body = problem._replace(frozen=body)

            def step(chain_state, key, chain_sums):
                return advance(sampler, chain_state, key, t, at_body, hyper, chain_sums)

            state, sums = jax.vmap(step)(state, keys, sums)
            grads = jax.grad(objective)(body, state.sampler_state.position, problem)
            updates, opt_state = optimizer.update(grads, opt_state, body)
            body = optax.apply_updates(body, updates)
            return state, body, opt_state, sums

        num_chains = chain_keys.shape[0]
        sums = jax.tree.map(lambda x: jnp.broadcast_to(x, (num_chains,)), zero_sums())
        state, body, opt_state, sums = jax.lax.fori_loop(0, count, one,
                                                         (state, body, opt_state, sums))
        sums = jax.vmap(lambda s: finish_sums(sampler, s, hyper, count))(sums)
        return state, body, opt_state, sums

    return xla.jit(run), optimizer


def compile_joint_warmup(loop, logdensity_fn: Callable, cfg: RunConfig):
    """(compiled program, initial optimiser state, compile seconds)."""
    run, optimizer = make_joint_warmup(loop.sampler, logdensity_fn, cfg)
    opt_state = optimizer.init(loop.problem.frozen)
    start = time.perf_counter()
    compiled = run.lower(loop.state, loop.chain_keys, loop.problem.frozen, opt_state,
                         np.int32(0), np.int32(0), loop.problem, loop.hyper).compile()
    return compiled, opt_state, time.perf_counter() - start


def joint_chunks(compiled, loop, opt_state, num_steps: int, first_chunk: int,
                 target_seconds: float = 0.5):
    """Run `num_steps` joint warmup steps in growing chunks; yield (state, body, sums, steps
    done) after each, sums with axis (chain,)."""
    state, body, step, size = loop.state, loop.problem.frozen, 0, first_chunk
    while step < num_steps:
        count = min(size, num_steps - step)
        start = time.perf_counter()
        state, body, opt_state, sums = compiled(state, loop.chain_keys, body, opt_state,
                                                np.int32(step), np.int32(count), loop.problem,
                                                loop.hyper)
        jax.block_until_ready(body)
        size = grow_chunk(count, time.perf_counter() - start, target_seconds)
        step += count
        yield state, body, jax.tree.map(np.asarray, sums), step


def train_jointly(cfg, loop, static, params, mask, slots, check, counts, progress):
    """Joint body training (see joint.py); returns the loop that samples with the trained body
    frozen (sampler restarted at the heads reached), the parameters with that body (what
    params.npz holds), and the compile seconds."""
    import equinox as eqx

    logdensity_fn = make_logdensity_fn(static, make_likelihood(cfg.likelihood).log_likelihood)
    compiled, opt_state, compile_s = compile_joint_warmup(loop, logdensity_fn, cfg)
    state, body = loop.state, loop.problem.frozen
    for state, body, sums, step in joint_chunks(compiled, loop, opt_state, cfg.body.steps,
                                                FIRST_CALL_STEPS):
        check(state)
        counts["grad_evals_joint"] = counts.get("grad_evals_joint", 0) + int(sums.grad_evals.sum())
        progress("joint training", step, cfg.body.steps, 0)
    position, _ = eqx.partition(params, mask)
    problem = loop.problem._replace(frozen=body)
    restarted = restart(loop.sampler, state, problem, loop.hyper)
    return loop._replace(state=restarted, problem=problem), eqx.combine(position, body), compile_s


def restart(sampler, state, problem, hyper):
    """A fresh sampler state at each chain's current position (keeps the non-finite record)."""
    init = jax.jit(jax.vmap(sampler.init, in_axes=(0, None, None)))
    return LoopState(init(state.sampler_state.position, problem, hyper), state.first_bad_step)
