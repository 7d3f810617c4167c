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

from headbayes.core.registry import discover
from headbayes.samplers.base import (SAMPLERS, make_sampler, make_hyper, prepared_hyper,
                                     failure_hint, Sampler, Info, make_info, tempered,
                                     PositionState, with_minibatch, SamplerOptions, check_common,
                                     step_size_hint, SHARED_KEYS)

__all__ = ["SAMPLERS", "make_sampler", "make_hyper", "prepared_hyper", "failure_hint", "Sampler",
           "Info", "make_info", "tempered", "PositionState", "with_minibatch", "SamplerOptions",
           "check_common", "step_size_hint", "SHARED_KEYS"]

from headbayes.samplers import sgmcmc, hmc  # noqa: E402,F401  (listed first: the common ones)

discover(__name__)
