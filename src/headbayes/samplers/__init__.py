"""Samplers: the registry and the `Sampler` shape (`samplers.base`), one module per family;
importing the package registers them all (`core.registry.discover`).
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
