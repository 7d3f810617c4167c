"""Sampler registry: name -> factory of a `Sampler(init, step)` over blackjax kernels.

Every sampler has the same shape: `init(position) -> state` and
`step(key, state, problem, hyper) -> (state, info)`, with `state.position` the sampled
sub-tree. Floats a sweep varies (step size, temperature) arrive in `hyper` as arrays, so one
compiled program serves the whole sweep.
"""

from typing import Callable, NamedTuple

import blackjax
import jax

from headbayes.errors import ConfigError

__all__ = ["Sampler", "Hyper", "SGLDState", "SGLDInfo", "make_sgld", "make_sampler", "SAMPLERS"]


class Sampler(NamedTuple):
    init: Callable
    step: Callable


class Hyper(NamedTuple):
    step_size: jax.Array
    temperature: jax.Array


class SGLDState(NamedTuple):
    position: object


class SGLDInfo(NamedTuple):
    """SGLD has no accept/reject; finiteness is tracked by the runner."""


def make_sgld(logdensity_fn: Callable) -> Sampler:
    """SGLD, blackjax convention: theta <- theta + eps grad log p + sqrt(2 T eps) xi.

    (Not Welling & Teh's eps/2 form.) The gradient is full-batch.
    """
    kernel = blackjax.sgld(jax.grad(logdensity_fn))

    def init(position) -> SGLDState:
        return SGLDState(kernel.init(position))

    def step(key, state: SGLDState, problem, hyper: Hyper):
        position = kernel.step(key, state.position, problem, hyper.step_size, hyper.temperature)
        return SGLDState(position), SGLDInfo()

    return Sampler(init, step)


SAMPLERS = {"sgld": make_sgld}


def make_sampler(name: str, logdensity_fn: Callable) -> Sampler:
    if name not in SAMPLERS:
        raise ConfigError(f"`sampler.name` must be one of {', '.join(SAMPLERS)}, got {name!r}")
    return SAMPLERS[name](logdensity_fn)
