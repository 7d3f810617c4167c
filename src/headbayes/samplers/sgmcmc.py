"""Gradient-based samplers without adaptation: SGLD, SGHMC (both take minibatches) and MALA."""

from dataclasses import dataclass
from typing import Callable

import jax

from headbayes.core.checks import at_least, positive_float, require
from headbayes.samplers.base import (SAMPLERS, PositionState, Sampler, SamplerOptions,
                                     check_common, make_info, step_size_hint, tempered,
                                     with_minibatch)

__all__ = ["SGLDOptions", "SGHMCOptions", "MALAOptions", "make_sgld", "make_sghmc", "make_mala"]


@dataclass
class SGLDOptions(SamplerOptions):
    name: str = "sgld"
    step_size: float = 1e-3
    batch_size: int = 0  # points per gradient (uniform, with replacement); 0: the full data


@dataclass
class SGHMCOptions(SGLDOptions):
    name: str = "sghmc"
    num_integration_steps: int = 10
    friction: float = 0.01


@dataclass
class MALAOptions(SamplerOptions):
    name: str = "mala"
    step_size: float = 1e-3


def check_step_size(options, cfg, temperature_zero_ok: bool = False) -> None:
    check_common(options, cfg, temperature_zero_ok)
    positive_float("sampler.step_size", options.step_size)


def _check_minibatch(options, cfg) -> None:
    check_step_size(options, cfg, temperature_zero_ok=True)
    at_least("sampler.batch_size", options.batch_size, 0)
    n_train = getattr(cfg.data, "n_train", None)  # file data: checked once it is read
    if options.batch_size > 0 and n_train is not None:
        require(options.batch_size <= n_train, "sampler.batch_size", options.batch_size,
                f"at most data.n_train ({n_train})")


MAX_INTEGRATION_STEPS = 1024  # NUTS's own limit (tree depth 10)


def check_integration_steps(options) -> None:
    """One step's integration steps run in one compiled call, which no signal can split: at
    most MAX_INTEGRATION_STEPS, so a call stays short."""
    require(1 <= options.num_integration_steps <= MAX_INTEGRATION_STEPS,
            "sampler.num_integration_steps", options.num_integration_steps,
            f"an integer in [1, {MAX_INTEGRATION_STEPS}] (one step runs in one compiled call; "
            f"longer paths: a larger step size, or sampler=nuts)")


def _check_sghmc(options, cfg) -> None:
    _check_minibatch(options, cfg)
    check_integration_steps(options)
    positive_float("sampler.friction", options.friction)


HYPER = ("step_size", "temperature")


@SAMPLERS.register("sgld", SGLDOptions, check=_check_minibatch, caps={"minibatch"},
                   hyper=HYPER, hint=step_size_hint)
def make_sgld(logdensity_fn: Callable, cfg) -> Sampler:
    """SGLD, blackjax convention: θ <- θ + ε ∇log p(θ) + sqrt(2 T ε) ξ; the gradient is
    full-batch, or an unbiased minibatch estimate with `batch_size` > 0.

    This is not Welling & Teh's ε/2 form.
    """

    def kernel():  # blackjax is imported when the step is traced (a stored program is not)
        import blackjax

        return blackjax.sgld(jax.grad(logdensity_fn))

    def init(position, problem, hyper):
        return PositionState(position)

    def info(hyper):
        return make_info(step_size=hyper["step_size"])

    def step(key, state, problem, hyper):
        kernel_step = with_minibatch(kernel().step, cfg.batch_size)
        position = kernel_step(key, state.position, problem, hyper["step_size"],
                               hyper["temperature"])
        return PositionState(position), info(hyper)

    return Sampler(init, step, constant_info=info, trivial_init=True)


@SAMPLERS.register("sghmc", SGHMCOptions, check=_check_sghmc, caps={"minibatch"},
                   hyper=HYPER, hint=step_size_hint)
def make_sghmc(logdensity_fn: Callable, cfg) -> Sampler:
    """SGHMC (blackjax): momentum refreshed each step, `num_integration_steps` Euler steps of
    the friction-`friction` diffusion; full-batch gradient, or one minibatch per step (shared
    by its integration steps) with `batch_size` > 0."""

    def kernel():  # blackjax is imported when the step is traced (a stored program is not)
        import blackjax

        return blackjax.sghmc(jax.grad(logdensity_fn), cfg.num_integration_steps, cfg.friction)

    def init(position, problem, hyper):
        return PositionState(position)

    def info(hyper):
        return make_info(num_grad_evals=cfg.num_integration_steps, step_size=hyper["step_size"])

    def step(key, state, problem, hyper):
        kernel_step = with_minibatch(kernel().step, cfg.batch_size)
        position = kernel_step(key, state.position, problem, hyper["step_size"],
                               hyper["temperature"])
        return PositionState(position), info(hyper)

    return Sampler(init, step, constant_info=info, trivial_init=True)


@SAMPLERS.register("mala", MALAOptions, check=check_step_size, hyper=HYPER,
                   hint=step_size_hint)
def make_mala(logdensity_fn: Callable, cfg) -> Sampler:
    """Metropolis-adjusted Langevin with fixed `step_size`."""
    import blackjax  # imported when a sampler is built, not for its config

    kernel = blackjax.mala.build_kernel()

    def init(position, problem, hyper):
        return blackjax.mala.init(position, tempered(logdensity_fn, problem, hyper))

    def step(key, state, problem, hyper):
        logdensity = tempered(logdensity_fn, problem, hyper)
        state, info = kernel(key, state, logdensity, hyper["step_size"])
        return state, make_info(info.acceptance_rate, False, 1, hyper["step_size"])

    def refresh(key, state, problem, hyper):
        return init(state.position, problem, hyper), 1

    return Sampler(init, step, refresh=refresh)
