"""Sampler registry: name -> factory of a `Sampler(init, step, warmup)` over blackjax.

Every sampler has the same shape:
- `init(position, problem, hyper) -> state`, with `state.position` the sampled sub-tree;
- `step(key, state, problem, hyper) -> (state, Info)`;
- `warmup(key, state, problem, hyper, num_steps) -> (state, Info)` or None. When None, warmup is
  `num_steps` ordinary steps run by the chunked loop; otherwise the sampler fits itself
  (optimisation) and the returned Info sums over those steps;
- `constant_info(hyper) -> Info` or None: for samplers whose step information never changes
  (no accept/reject), so the loop need not add it up step by step;
- `trivial_init`: True when `init` only wraps the position (no computation), so batched starts
  need no compiled program.
Floats a sweep varies (step size, temperature, learning rate) arrive in `hyper` as arrays, so
one compiled program serves the whole sweep. Every sampler targets p(θ)^(1/T), T = temperature.
"""

import importlib
from typing import Callable, NamedTuple

import blackjax
import jax
import jax.numpy as jnp

from headbayes.config import SamplerConfig
from headbayes.errors import ConfigError
from headbayes.posterior import minibatch

__all__ = ["Sampler", "Hyper", "Info", "make_info", "make_sampler", "SAMPLERS", "REGISTRY",
           "tempered", "PositionState", "with_minibatch"]


class Sampler(NamedTuple):
    init: Callable
    step: Callable
    warmup: Callable | None = None
    constant_info: Callable | None = None
    trivial_init: bool = False


class Hyper(NamedTuple):
    step_size: jax.Array
    temperature: jax.Array
    learning_rate: jax.Array


class Info(NamedTuple):
    """Per-step information, the same for every sampler (summed over steps by the runner)."""

    acceptance_rate: jax.Array  # float32; 1 for samplers without accept/reject
    is_divergent: jax.Array  # bool
    num_grad_evals: jax.Array  # int32: gradient (or log-density) evaluations this step
    step_size: jax.Array  # float32


def make_info(acceptance_rate=1.0, is_divergent=False, num_grad_evals=1, step_size=0.0) -> Info:
    return Info(jnp.asarray(acceptance_rate, jnp.float32), jnp.asarray(is_divergent, bool),
                jnp.asarray(num_grad_evals, jnp.int32), jnp.asarray(step_size, jnp.float32))


class PositionState(NamedTuple):
    """State of samplers whose blackjax kernel keeps only the position (SGLD, SGHMC)."""

    position: object


def tempered(logdensity_fn: Callable, problem, hyper: Hyper) -> Callable:
    """θ -> log p(θ | problem) / T."""
    return lambda position: logdensity_fn(position, problem) / hyper.temperature


def with_minibatch(kernel_step: Callable, batch_size: int) -> Callable:
    """`kernel_step(key, position, problem, ...)` on a minibatch of `batch_size` points drawn
    uniformly with replacement from the step's key (0: the full data, key unchanged)."""
    if batch_size == 0:
        return kernel_step

    def step(key, position, problem, *args):
        batch_key, key = jax.random.split(key)
        indices = jax.random.randint(batch_key, (batch_size,), 0, problem.x.shape[0])
        return kernel_step(key, position, minibatch(problem, indices), *args)

    return step


def make_sgld(logdensity_fn: Callable, cfg: SamplerConfig) -> Sampler:
    """SGLD, blackjax convention: θ <- θ + ε ∇log p(θ) + sqrt(2 T ε) ξ; the gradient is
    full-batch, or an unbiased minibatch estimate with `batch_size` > 0.

    This is not Welling & Teh's ε/2 form.
    """
    kernel_step = with_minibatch(blackjax.sgld(jax.grad(logdensity_fn)).step, cfg.batch_size)

    def init(position, problem, hyper):
        return PositionState(position)

    def info(hyper):
        return make_info(step_size=hyper.step_size)

    def step(key, state, problem, hyper):
        position = kernel_step(key, state.position, problem, hyper.step_size, hyper.temperature)
        return PositionState(position), info(hyper)

    return Sampler(init, step, constant_info=info, trivial_init=True)


def make_sghmc(logdensity_fn: Callable, cfg: SamplerConfig) -> Sampler:
    """SGHMC (blackjax): momentum refreshed each step, `num_integration_steps` Euler steps of
    the friction-`friction` diffusion; full-batch gradient, or one minibatch per step (shared
    by its integration steps) with `batch_size` > 0."""
    kernel = blackjax.sghmc(jax.grad(logdensity_fn), cfg.num_integration_steps, cfg.friction)
    kernel_step = with_minibatch(kernel.step, cfg.batch_size)

    def init(position, problem, hyper):
        return PositionState(position)

    def info(hyper):
        return make_info(num_grad_evals=cfg.num_integration_steps, step_size=hyper.step_size)

    def step(key, state, problem, hyper):
        position = kernel_step(key, state.position, problem, hyper.step_size, hyper.temperature)
        return PositionState(position), info(hyper)

    return Sampler(init, step, constant_info=info, trivial_init=True)


def make_mala(logdensity_fn: Callable, cfg: SamplerConfig) -> Sampler:
    """Metropolis-adjusted Langevin with fixed `step_size`."""
    kernel = blackjax.mala.build_kernel()

    def init(position, problem, hyper):
        return blackjax.mala.init(position, tempered(logdensity_fn, problem, hyper))

    def step(key, state, problem, hyper):
        state, info = kernel(key, state, tempered(logdensity_fn, problem, hyper), hyper.step_size)
        return state, make_info(info.acceptance_rate, False, 1, hyper.step_size)

    return Sampler(init, step)


# name -> (module, factory); modules are imported only when their sampler is used
REGISTRY = {"sgld": ("headbayes.samplers", "make_sgld"),
            "sghmc": ("headbayes.samplers", "make_sghmc"),
            "mala": ("headbayes.samplers", "make_mala"),
            "hmc": ("headbayes.hmc", "make_hmc"),
            "nuts": ("headbayes.hmc", "make_nuts"),
            "vi": ("headbayes.approximate", "make_vi"),
            "laplace": ("headbayes.approximate", "make_laplace")}
SAMPLERS = tuple(REGISTRY)


def make_sampler(cfg: SamplerConfig, logdensity_fn: Callable) -> Sampler:
    if cfg.name not in REGISTRY:
        raise ConfigError(f"`sampler.name` must be one of {', '.join(REGISTRY)}, got {cfg.name!r}")
    module, factory = REGISTRY[cfg.name]
    return getattr(importlib.import_module(module), factory)(logdensity_fn, cfg)
