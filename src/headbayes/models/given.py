"""`given`: an equinox model object handed to `headbayes.fit`, rather than built from a config.

The object is kept in this process under its digest (`give`); the config names it by that
digest, so every cache keyed on the model options (`models.model_key`) keys on the object's
class objects, structure, static parts and array values. The config also keeps the object's
`layout` (its classes by name, static fields, functions by name, leaf paths, shapes and
dtypes): a run directory of a given model is read again with
the model passed back in (`receive`, `headbayes.load_run(dir, model=net)`), which must have
that layout; its values then come from the run's params.npz, as for every model.
"""

import hashlib
import re
from dataclasses import dataclass

import numpy as np

from headbayes.core.errors import ConfigError
from headbayes.models.base import MODELS, _check_built, _check_sizes, _module_classes
from headbayes.models.mask import named_leaves

__all__ = ["GivenModel", "give", "receive", "require_given", "layout_of", "is_given"]

_GIVEN: dict = {}  # digest -> the model object, for this process's life


@dataclass
class GivenModel:
    name: str = "given"
    in_features: int | None = None  # None: from the data
    out_features: int | None = None
    seed: int = 0  # unused: the object's values are given
    cache_features: bool = True
    digest: str = ""  # SHA-256 of the object: classes, structure, static parts, array values
    layout: str = ""  # SHA-256 of what another process can check: see layout_of
    described: str = ""  # its class and size, for messages


def is_given(options) -> bool:
    return isinstance(options, GivenModel)


def _array_leaves(module) -> dict:
    import equinox as eqx

    return named_leaves(eqx.filter(module, eqx.is_array))


def _portable(value) -> str:
    """A leaf that is not an array, as another process would name it: a function by its
    module and name, anything else by its repr with memory addresses removed."""
    name = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
    if callable(value) and name:
        return f"{getattr(value, '__module__', '')}.{name}"
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


def layout_of(module) -> tuple[str, str]:
    """(layout digest, description) of an equinox module: what a model passed again must
    share with the one a run was fit with: its classes, its static fields and other
    non-array leaves (functions by name), its array leaves' paths, shapes and dtypes."""
    import jax

    classes = [f"{c.__module__}.{c.__qualname__}" for c in _module_classes(module)]
    leaves = _array_leaves(module)
    others, treedef = jax.tree_util.tree_flatten(module)
    digest = hashlib.sha256("\n".join(classes).encode())
    digest.update(re.sub(r" at 0x[0-9a-fA-F]+", "", str(treedef)).encode())
    for leaf in others:
        if not (hasattr(leaf, "shape") and hasattr(leaf, "dtype")):
            digest.update(f"\n{_portable(leaf)}".encode())
    for path, leaf in leaves.items():
        digest.update(f"\n{path} {np.dtype(leaf.dtype).str} {tuple(leaf.shape)}".encode())
    size = sum(int(np.prod(leaf.shape)) for leaf in leaves.values())
    described = (f"{type(module).__name__} with {len(leaves)} array leaves "
                 f"({size:,} numbers)")
    return digest.hexdigest(), described


def _digest(module) -> str:
    """SHA-256 of everything the object computes with: its classes (the class objects
    themselves: a class defined again, in a notebook cell, is another model), its tree
    structure (static fields included), its array leaves' dtypes, shapes and bytes, its other
    leaves' reprs."""
    import jax

    leaves, treedef = jax.tree_util.tree_flatten(module)
    classes = [f"{c.__module__}.{c.__qualname__}@{id(c)}" for c in _module_classes(module)]
    digest = hashlib.sha256("\n".join([*classes, str(treedef)]).encode())
    for leaf in leaves:
        if hasattr(leaf, "shape") and hasattr(leaf, "dtype"):
            value = np.ascontiguousarray(np.asarray(leaf))
            digest.update(f"\0{value.dtype.str}{value.shape}".encode())
            digest.update(memoryview(value).cast("B"))
        else:
            digest.update(f"\0{leaf!r}".encode())
    return digest.hexdigest()


def _refuse_non_module(module, what: str) -> None:
    import equinox as eqx

    if not isinstance(module, eqx.Module):
        raise ConfigError(f"{what} must be an equinox Module (an equinox.nn.MLP, or your "
                          f"eqx.Module subclass), got {type(module).__name__}")


def give(module) -> GivenModel:
    """The model options of `module`, kept in this process under its digest."""
    _refuse_non_module(module, "model")
    digest = _digest(module)
    _GIVEN.setdefault(digest, module)
    layout, described = layout_of(module)
    return GivenModel(digest=digest, layout=layout, described=described)


def receive(options: GivenModel, module) -> GivenModel:
    """`options` (a run's saved given model) with `module` in its place: the model passed back
    in, which must have the run's layout. ConfigError naming both when it does not."""
    _refuse_non_module(module, "model=")
    layout, described = layout_of(module)
    if layout != options.layout:
        raise ConfigError(f"model=: this run was fit with a {options.described}; the model "
                          f"given is a {described} (pass the network the run was fit with: "
                          f"the same classes and leaf shapes)")
    given = give(module)
    return GivenModel(**{**vars(options), "digest": given.digest})


def require_given(options: GivenModel):
    """The object of `options`; ConfigError saying how to pass it when this process has not
    been given it."""
    if options.digest not in _GIVEN:
        raise ConfigError(f"this run's model was an equinox object ({options.described}) given "
                          f"to headbayes.fit in another Python process: pass it again, "
                          f"headbayes.load_run(DIR, model=net)")
    return _GIVEN[options.digest]


def _build(options: GivenModel, key, in_features: int, out_features: int):
    return require_given(options)


def _check(options: GivenModel, cfg) -> None:
    require_given(options)  # kept in this process, else the one thing to do
    _check_sizes(options, cfg)
    _check_built(f"{options.described.split(' ')[0]} (the model given)", cfg)


MODELS.register("given", GivenModel, check=_check)(_build)
