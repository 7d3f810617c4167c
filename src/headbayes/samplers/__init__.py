"""Sampler registry: name -> entry (schema, factory, checks, capabilities).

Every sampler has the same shape (`headbayes.samplers.base`): `init(position, problem, hyper)`,
`step(key, state, problem, hyper) -> (state, Info)`, optionally an own `warmup`. Each module of
this package registers its samplers when imported; a new sampler is a module here plus its
`configs/sampler/NAME.yaml`. Capabilities: `minibatch` (takes `batch_size`), `fitted` (warmup
fits an approximation, then draws are i.i.d.), `closed_form` (draws from the whole
posterior computed before the loop: `exact`), `composite` (built over the groups of
`mask.groups`, each with its own sampler: `gibbs`). An entry's optional `prepare` computes arrays
from the run before the loop (they join `hyper`). Floats a sweep varies (the entry's `hyper`
keys) reach the compiled loop as arrays, so one program serves the whole sweep.
"""

from typing import Callable

import jax.numpy as jnp

from headbayes.registry import Registry, discover

__all__ = ["SAMPLERS", "make_sampler", "make_hyper", "prepared_hyper", "failure_hint"]

SAMPLERS = Registry("sampler")


def make_sampler(options, logdensity_fn: Callable, cfg=None):
    """The `Sampler` of the typed sampler options over `logdensity_fn(position, problem)`;
    a `composite` one (Gibbs) also reads the run config `cfg` (its groups). What the factory
    computes from constants is computed now, even inside a trace (`pipeline.abstract_loop`)."""
    import jax

    entry = SAMPLERS[options.name]
    with jax.ensure_compile_time_eval():
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


from headbayes.samplers import sgmcmc, hmc  # noqa: E402,F401  (listed first: the common ones)

discover(__name__)
