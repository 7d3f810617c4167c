"""Compiled programs and built models kept for reuse in this process and beside JAX's
compilation cache: the model's arrays (`build_model`)."""

from headbayes.core import xla
from headbayes.engine.exported import kept_model_arrays, only_own_code
from headbayes.models import construct, is_shape, model_key, model_structure

__all__ = ["build_model"]

_MODELS: dict = {}  # built models by model_key (the jobs of a sweep in one process share them)


def build_model(cfg):
    """The equinox model of a typed config, its arrays computed in one compiled call
    (`xla.jit_once`) and cached (jobs of a sweep in one process share it; the model is
    immutable)."""
    import equinox as eqx

    cache_key = ("model", *model_key(cfg))
    if cache_key not in _MODELS:
        arrays = _kept_arrays(cfg, xla.jit_once(lambda: eqx.filter(construct(cfg), eqx.is_array)))
        rest = eqx.filter(model_structure(cfg), is_shape, inverse=True)
        if len(_MODELS) >= 16:
            _MODELS.pop(next(iter(_MODELS)))
        _MODELS[cache_key] = eqx.combine(arrays, rest)
    return _MODELS[cache_key]


def _kept_arrays(cfg, compute):
    """`compute()`, or the arrays a run of the same model options kept on disk beside JAX's
    compilation cache, when this process uses one (`exported.kept_model_arrays`; not for a
    user's `_target_` model or options registered outside headbayes: their code has no
    digest there)."""
    import equinox as eqx
    import jax

    cache_dir = jax.config.jax_compilation_cache_dir if only_own_code(cfg) else None
    return kept_model_arrays(cache_dir, repr(model_key(cfg)),
                             eqx.filter(model_structure(cfg), is_shape), compute)
