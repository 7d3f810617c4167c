"""HMC and NUTS over blackjax, with Stan's window adaptation inside the sampling loop.

During the first `sampler.warmup` steps every chain adapts its own step size (dual averaging
towards `target_accept`) and inverse mass matrix (`mass_matrix: diagonal | dense`) on Stan's
schedule of windows, using `headbayes.samplers.adaptation` one step at a time; after the
last warmup step the adapted values are frozen. Adapting inside the chunked loop means one
compiled program (one copy of the kernel) and a progress bar during warmup. The inverse mass
matrix starts at the identity (Stan's and NumPyro's start) or, with `mass_init: hessian`, at
the inverse of −∇² log p at each chain's start (`inverse_curvature`): the posterior's
covariance where it is Gaussian, as a linear head's with a Gaussian likelihood is, so the
first windows no longer build NUTS' deepest trees on a badly scaled posterior (`sin_head_nuts`:
363,133 warmup gradient evaluations → about 18,000). It costs d gradient-vector products, a
d × d matrix and its eigendecomposition per chain (d sampled numbers). From that start every
slow window's estimate also counts the previous estimate as HESSIAN_DRAWS draws (blackjax's
`imm_shrinkage_to_previous`), so the first 25-draw window refines the start rather than
replacing it with a noisier estimate (`sin_head_nuts`: 26,303 warmup evaluations → 17,858).
With `warmup: 0` the step size is `sampler.step_size` and the mass matrix that start.
"""

from dataclasses import dataclass
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from headbayes.core.checks import choice, require
from headbayes.samplers.adaptation import schedule as window_schedule, window_adaptation
from headbayes.samplers.base import (SAMPLERS, Sampler, SamplerOptions, make_info, step_size_hint,
                                     tempered)
from headbayes.samplers.sgmcmc import check_integration_steps, check_step_size

__all__ = ["make_hmc", "make_nuts", "AdaptiveState", "NUTSOptions", "HMCOptions"]

MASS_MATRICES = ("diagonal", "dense")
MASS_INITS = ("identity", "hessian")
HESSIAN_DRAWS = 25.0  # pseudo-draws at the previous estimate per slow window (Stan's first: 25)


@dataclass
class NUTSOptions(SamplerOptions):
    name: str = "nuts"
    step_size: float = 1e-2  # the start of the adaptation (the step size itself with warmup 0)
    mass_matrix: str = "dense"  # diagonal | dense
    mass_init: str = "identity"  # identity | hessian: where the mass matrix's adaptation starts
    target_accept: float = 0.8
    warmup: int = 500
    keep: int = 1000
    thin: int = 1
    num_chains: int = 4
    init_jitter: float = 0.1


@dataclass
class HMCOptions(NUTSOptions):
    name: str = "hmc"
    num_integration_steps: int = 10


def _check(options, cfg) -> None:
    check_step_size(options, cfg)
    choice("sampler.mass_matrix", options.mass_matrix, MASS_MATRICES)
    choice("sampler.mass_init", options.mass_init, MASS_INITS)
    require(0 < options.target_accept < 1, "sampler.target_accept", options.target_accept,
            "a number in (0, 1)")
    if hasattr(options, "num_integration_steps"):
        check_integration_steps(options)


class AdaptiveState(NamedTuple):
    inner: object  # blackjax HMCState
    adaptation: object  # blackjax WindowAdaptationState
    step_size: jax.Array
    inverse_mass_matrix: jax.Array
    step: jax.Array  # steps taken by this chain

    @property
    def position(self):
        return self.inner.position


def inverse_curvature(logdensity: Callable, position, dense: bool) -> jax.Array:
    """The inverse of −∇² log p at `position` (flattened as `ravel_pytree`): the posterior's
    covariance where it is Gaussian. Dense: through the eigenvalues, each replaced by its
    absolute value and kept above 1e-6 of the largest (a saddle or flat direction still gives
    a positive definite matrix); diagonal: the inverse of the Hessian's diagonal, alike. Where
    the curvature is zero or not finite everywhere, the identity."""
    flat, unravel = ravel_pytree(position)
    curvature = -jax.hessian(lambda x: logdensity(unravel(x)))(flat)
    if dense:
        values, vectors = jnp.linalg.eigh((curvature + curvature.T) / 2)
    else:
        values, vectors = jnp.diagonal(curvature), None
    values = jnp.abs(values)
    largest = jnp.max(values)
    usable = jnp.isfinite(largest) & (largest > 0) & jnp.all(jnp.isfinite(curvature))
    values = jnp.where(usable, jnp.maximum(values, 1e-6 * largest), 1.0)
    if not dense:
        return 1.0 / values
    return jnp.where(usable, (vectors / values) @ vectors.T, jnp.eye(flat.size, dtype=flat.dtype))


def _make(kernel_fn: Callable, cfg, logdensity_fn: Callable) -> Sampler:
    import blackjax  # imported when a sampler is built, not for its config

    dense = cfg.mass_matrix == "dense"
    by_hessian = cfg.mass_init == "hessian"
    warmup = cfg.warmup
    adapt_init, adapt_update, adapt_final = window_adaptation(
        is_mass_matrix_diagonal=not dense, target_acceptance_rate=cfg.target_accept,
        shrinkage=HESSIAN_DRAWS if by_hessian else 0.0)
    schedule = window_schedule(warmup)

    def init(position, problem, hyper):
        logdensity = tempered(logdensity_fn, problem, hyper)
        inner = blackjax.hmc.init(position, logdensity)
        step_size = jnp.asarray(hyper["step_size"], jnp.float32)
        imm = inverse_curvature(logdensity, position, dense) if by_hessian else None
        adaptation = adapt_init(position, step_size, imm)
        return AdaptiveState(inner, adaptation, step_size, adaptation.inverse_mass_matrix,
                             jnp.int32(0))

    def adapt(state: AdaptiveState, position, acceptance_rate) -> AdaptiveState:
        stage = jnp.asarray(schedule)[jnp.minimum(state.step, warmup - 1)]
        adaptation = adapt_update(state.adaptation, (stage[0], stage[1]), position,
                                  acceptance_rate)
        final_step_size, final_imm = adapt_final(adaptation)
        last = state.step == warmup - 1
        step_size = jnp.where(last, final_step_size, adaptation.step_size)
        imm = jnp.where(last, final_imm, adaptation.inverse_mass_matrix)
        adapting = state.step < warmup
        keep = lambda new, old: jnp.where(adapting, new, old)  # noqa: E731
        return state._replace(adaptation=jax.tree.map(keep, adaptation, state.adaptation),
                              step_size=keep(step_size, state.step_size).astype(jnp.float32),
                              inverse_mass_matrix=keep(imm, state.inverse_mass_matrix))

    def step(key, state: AdaptiveState, problem, hyper):
        inner, info = kernel_fn(key, state.inner, tempered(logdensity_fn, problem, hyper),
                                state.step_size, state.inverse_mass_matrix)
        new = state._replace(inner=inner, step=state.step + 1)
        if warmup > 0:
            new = adapt(state._replace(inner=inner), inner.position,
                        info.acceptance_rate)._replace(step=state.step + 1)
        return new, make_info(info.acceptance_rate, info.is_divergent,
                              info.num_integration_steps, state.step_size)

    def refresh(key, state: AdaptiveState, problem, hyper):
        inner = blackjax.hmc.init(state.position, tempered(logdensity_fn, problem, hyper))
        return state._replace(inner=inner), 1

    return Sampler(init, step, refresh=refresh)


@SAMPLERS.register("hmc", HMCOptions, check=_check, hyper=("step_size", "temperature"),
                   hint=step_size_hint)
def make_hmc(logdensity_fn: Callable, cfg) -> Sampler:
    """HMC with a jittered number of leapfrog steps, uniform in [L/2, 3L/2] around
    L = `num_integration_steps`, so no path length resonates with the target's periods."""
    import blackjax

    kernel = blackjax.hmc.build_kernel()
    low = max(1, cfg.num_integration_steps // 2)
    high = max(low, cfg.num_integration_steps * 3 // 2)

    def kernel_fn(key, state, logdensity, step_size, inverse_mass_matrix):
        length_key, key = jax.random.split(key)
        length = jax.random.randint(length_key, (), low, high + 1)
        return kernel(key, state, logdensity, step_size, inverse_mass_matrix, length)

    return _make(kernel_fn, cfg, logdensity_fn)


@SAMPLERS.register("nuts", NUTSOptions, check=_check, hyper=("step_size", "temperature"),
                   hint=step_size_hint)
def make_nuts(logdensity_fn: Callable, cfg) -> Sampler:
    """The No-U-Turn sampler (multinomial, at most 10 doublings)."""
    import blackjax

    return _make(blackjax.nuts.build_kernel(), cfg, logdensity_fn)
