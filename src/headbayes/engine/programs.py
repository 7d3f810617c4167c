"""The one cache of programs and built models, and its key recipe.

In this process, `kept(key, make)` keeps the latest `MAX_KEPT` values: the sampling loop's
chunk and start programs (`engine.runner`), the report's function-draw programs
(`engine.predictive`) and built models (`build_model`). Every key starts with its kind and
then names everything the value closes over beyond its arguments, by one of two recipes:
`program_key(cfg)` (the whole config but what reaches the program as arguments) or
`models.model_key(cfg)` (the model's options, sizes and LoRA adapters); a kind adds the
shapes, dtypes and options it depends on. On disk, beside JAX's compilation cache and by the
same keys: the chunk program (`engine.exported.program_path`) and the model's arrays
(`engine.exported.kept_model_arrays`).
"""

import dataclasses
from pathlib import Path
from typing import Callable

from headbayes.core import xla
from headbayes.core.schema import RunConfig
from headbayes.core.settings import settings
from headbayes.engine.exported import kept_model_arrays, only_own_code
from headbayes.models import construct, is_shape, model_key, model_structure
from headbayes.models.code import inside_read_run
from headbayes.samplers import SAMPLERS

__all__ = ["kept", "forget", "program_key", "build_model", "MAX_KEPT", "compile_cache_dir",
           "enable_compile_cache"]

MAX_KEPT = 32
_KEPT: dict = {}  # key -> value, least recently used first


def kept(key: tuple, make: Callable):
    """The value kept under `key`, or `make()` kept there (the latest `MAX_KEPT` are kept)."""
    if key in _KEPT:
        _KEPT[key] = _KEPT.pop(key)  # the most recently used goes last
        return _KEPT[key]
    value = make()
    while len(_KEPT) >= MAX_KEPT:
        _KEPT.pop(next(iter(_KEPT)))
    _KEPT[key] = value
    return value


def forget(kind: str | None = None) -> None:
    """Drop the kept values (of one kind), as a new process would start."""
    for key in [k for k in _KEPT if kind is None or k[0] == kind]:
        del _KEPT[key]


def program_key(cfg: RunConfig) -> str:
    """What the chunk program depends on beyond its arguments (`runner.compile_loop`'s
    `reuse`): the whole config but `seed` (it only makes the chain keys and the starts) and the
    sampler's `hyper` floats (step size, temperature: they reach the program as arrays), so the
    jobs of a sweep over those share one program."""
    hyper = SAMPLERS[cfg.sampler.name].extras["hyper"]
    sampler = dataclasses.replace(cfg.sampler, **{k: None for k in hyper})
    return repr(dataclasses.replace(cfg, seed=None, sampler=sampler))


def build_model(cfg):
    """The equinox model of a typed config, its arrays computed in one compiled call
    (`xla.jit_once`), or read where a run of the same model kept them on disk; kept (the jobs
    of a sweep in one process share it; the model is immutable)."""
    return kept(("model", model_key(cfg)), lambda: _build(cfg))


def _build(cfg):
    import equinox as eqx
    import jax

    structure = model_structure(cfg)
    # not for a user's `_target_` model or options registered outside headbayes: their code
    # has no digest on disk
    cache_dir = jax.config.jax_compilation_cache_dir if only_own_code(cfg) else None
    arrays = kept_model_arrays(cache_dir, repr(model_key(cfg)), eqx.filter(structure, is_shape),
                               xla.jit_once(lambda: eqx.filter(construct(cfg), eqx.is_array)))
    return eqx.combine(arrays, eqx.filter(structure, is_shape, inverse=True))


def compile_cache_dir() -> Path | None:
    """$HEADBAYES_COMPILE_CACHE, else $HEADBAYES_OUTPUT_DIR/jax_cache (default outputs/jax_cache);
    the empty string turns the cache off (`core.settings`). None, too, when it lies inside a
    run directory this process read (`headbayes report .` from inside a received one): its
    compiled programs would be the sender's code, and a link there could point anywhere."""
    directory = settings().compile_cache
    return None if directory is None or inside_read_run(directory) else directory


def enable_compile_cache() -> None:
    """Use JAX's persistent compilation cache, so a program compiled once (any run, any job of a
    sweep with the same structure) loads from disk instead of compiling again."""
    import jax

    directory = compile_cache_dir()
    if directory is None:
        return
    jax.config.update("jax_compilation_cache_dir", str(directory.resolve()))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
