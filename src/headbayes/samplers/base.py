"""What every sampler shares: the `Sampler` shape, `Info`, the common config keys and checks.

Every sampler has the same shape:
- `init(position, problem, hyper) -> state`, with `state.position` the sampled sub-tree;
- `step(key, state, problem, hyper) -> (state, Info)`;
- warmup is `sampler.warmup` ordinary steps of the chunked loop: samplers that adapt (HMC,
  NUTS) or fit themselves (VI, Laplace) do it inside `step`, counting their own steps;
- `constant_info(hyper) -> Info` or None: for samplers whose step information never changes
  (no accept/reject), so the loop need not add it up step by step;
- `trivial_init`: True when `init` only wraps the position (no computation), so batched starts
  need no compiled program;
- `refresh(key, state, problem, hyper) -> (state, gradient evaluations)` or None: bring the
  state up to date after the target changed under it, as it does for a Gibbs group when the
  other groups move: recompute the cached log-density and gradient (HMC, NUTS, MALA), or,
  once fitted, refit the Gaussian to the new target (VI, Laplace). None: nothing to update.
- `groups`: the group names of a Gibbs sampler (its `Info.groups` has one `Info` each).
Floats a sweep varies arrive in `hyper`, a dict of arrays keyed by config key (the entry's
`hyper` keys), so one compiled program serves the whole sweep. Every sampler targets
p(θ)^(1/T), T = temperature.

`SAMPLERS`, the registry: name -> entry (schema, factory, checks, capabilities). Each module of
this package registers its samplers when imported; a new sampler is a module here plus its
`configs/sampler/NAME.yaml`. Capabilities: `minibatch` (takes `batch_size`), `fitted` (warmup
fits an approximation, then draws are i.i.d.), `closed_form` (draws from the whole posterior
computed before the loop: `exact`), `composite` (built over the groups of `mask.groups`, each
with its own sampler: `gibbs`). An entry's optional `prepare` computes arrays from the run
before the loop (they join `hyper`).
"""

from dataclasses import dataclass
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from headbayes.core.checks import at_least, nonnegative_float, positive_float, require
from headbayes.core.registry import Registry
from headbayes.models.bodies import body_entry
from headbayes.posterior.density import minibatch

__all__ = ["SAMPLERS", "make_sampler", "make_hyper", "prepared_hyper", "failure_hint", "Sampler",
           "Info", "make_info", "tempered", "PositionState", "with_minibatch", "SamplerOptions",
           "check_common", "step_size_hint", "SHARED_KEYS", "STEP_KEY"]


SAMPLERS = Registry("sampler")


class Sampler(NamedTuple):
    init: Callable
    step: Callable
    constant_info: Callable | None = None
    trivial_init: bool = False
    refresh: Callable | None = None
    groups: tuple = ()


class Info(NamedTuple):
    """Per-step information, the same for every sampler (summed over steps by the runner)."""

    acceptance_rate: jax.Array  # float32; 1 for samplers without accept/reject
    is_divergent: jax.Array  # bool
    num_grad_evals: jax.Array  # int32: gradient (or log-density) evaluations this step
    step_size: jax.Array  # float32
    groups: tuple = ()  # a Gibbs sampler's: one Info per group, in group order


def make_info(acceptance_rate=1.0, is_divergent=False, num_grad_evals=1, step_size=0.0) -> Info:
    return Info(jnp.asarray(acceptance_rate, jnp.float32), jnp.asarray(is_divergent, bool),
                jnp.asarray(num_grad_evals, jnp.int32), jnp.asarray(step_size, jnp.float32))


class PositionState(NamedTuple):
    """State of samplers whose blackjax kernel keeps only the position (SGLD, SGHMC)."""

    position: object


def tempered(logdensity_fn: Callable, problem, hyper: dict) -> Callable:
    """θ -> log p(θ | problem) / T."""
    return lambda position: logdensity_fn(position, problem) / hyper["temperature"]


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


@dataclass
class SamplerOptions:
    """Keys every sampler has; each sampler's schema adds its own."""

    name: str = ""
    temperature: float = 1.0  # T: the target is p(θ)^(1/T)
    warmup: int = 1500  # steps before the first kept draw (fitting steps for fitted samplers)
    keep: int = 400  # draws kept per chain
    thin: int = 2  # steps between kept draws
    num_chains: int = 1  # chains side by side (vmap; split across devices)
    init_jitter: float = 0.0  # chains start at the initial parameters + init_jitter · N(0, 1)


# The loop's step number in the `hyper` a sampler's step receives (`engine.runner.advance`): the
# same for every chain (a Gibbs group's hyper lacks it).
STEP_KEY = "step"

# The keys of SamplerOptions that the groups of a Gibbs sampler share (set on `sampler`).
SHARED_KEYS = ("temperature", "warmup", "keep", "thin", "num_chains", "init_jitter")


def check_common(options, cfg, temperature_zero_ok: bool = False) -> None:
    """Range checks of the keys every sampler has."""
    if temperature_zero_ok:
        nonnegative_float("sampler.temperature", options.temperature)
    else:
        positive_float("sampler.temperature", options.temperature)
    at_least("sampler.warmup", options.warmup, 0)
    at_least("sampler.keep", options.keep, 1)
    at_least("sampler.thin", options.thin, 1)
    at_least("sampler.num_chains", options.num_chains, 1)
    nonnegative_float("sampler.init_jitter", options.init_jitter)
    if "moves" in body_entry(cfg).caps:
        stepping = [n for n in SAMPLERS.names()
                    if not SAMPLERS[n].caps & {"fitted", "composite"}]
        require(options.name in stepping, "sampler.name", options.name,
                f"a stepping sampler ({', '.join(stepping)}) with body.mode={cfg.body.mode}")


def step_size_hint(options) -> str:
    return f"Try a smaller sampler.step_size (now {options.step_size:g})"


def make_sampler(options, logdensity_fn: Callable, cfg=None):
    """The `Sampler` of the typed sampler options over `logdensity_fn(position, problem)`;
    a `composite` one (Gibbs) also reads the run config `cfg` (its groups)."""
    entry = SAMPLERS[options.name]
    if "composite" in entry.caps:
        return entry.build(logdensity_fn, options, cfg)
    return entry.build(logdensity_fn, options)


def make_hyper(options) -> dict:
    """{key: float32 array} of the option's sweepable floats."""
    return {k: jnp.float32(getattr(options, k)) for k in SAMPLERS[options.name].extras["hyper"]}


def prepared_hyper(options, cfg, params: dict, sampled: list, data) -> dict:
    """`make_hyper(options)` plus the arrays the sampler computes from the run before the loop
    (its entry's `prepare(cfg, params, sampled, data)`; the exact sampler's posterior)."""
    hyper = make_hyper(options)
    prepare = SAMPLERS[options.name].extras.get("prepare")
    return {**hyper, **prepare(cfg, params, sampled, data)} if prepare else hyper


def failure_hint(options) -> str:
    """What to try when the sampler produced non-finite values."""
    return SAMPLERS[options.name].extras["hint"](options)
