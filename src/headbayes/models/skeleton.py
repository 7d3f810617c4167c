"""A model of a config with given leaf values: its skeleton (static part, frozen leaves, leaf
order, first sampled stage) and the model rebuilt from {dotted path: array}."""

from typing import NamedTuple

import numpy as np

from headbayes.models.base import first_sampled_stage, is_inexact_shape, model_structure
from headbayes.models.mask import leaf_path

__all__ = ["Skeleton", "skeleton", "combine", "model_with"]


class Skeleton(NamedTuple):
    """The run's model split for prediction: static part, frozen leaves, leaf order, stage."""

    static: object
    frozen: object  # the array leaves, sampled ones set to None
    treedef: object  # of the array leaves
    paths: list  # dotted paths of the array leaves, in tree order
    start: int  # the first stage with a sampled leaf (0: run the whole model every draw)


def skeleton(cfg, params: dict, sampled: set) -> Skeleton:
    """Rebuild the model of `cfg` with the values of `params` ({path: array})."""
    import equinox as eqx
    import jax

    model = model_structure(cfg)  # the values come from `params`: nothing to compute
    arrays, static = eqx.partition(model, is_inexact_shape)
    flat, treedef = jax.tree_util.tree_flatten_with_path(arrays)
    paths = [leaf_path(p) for p, _ in flat]
    values = [None if p in sampled else np.asarray(params[p]) for p in paths]
    start = first_sampled_stage(model, {p: p in sampled for p in paths})
    return Skeleton(static, values, treedef, paths, start)


def combine(sk: Skeleton, frozen: list, sampled_values: dict):
    import jax

    leaves = [sampled_values[p] if v is None else v for p, v in zip(sk.paths, frozen)]
    return jax.tree_util.tree_unflatten(sk.treedef, leaves)


def model_with(cfg, params: dict, dtype=None):
    """The model of `cfg` with every array leaf from `params` ({path: array}), cast to
    `dtype` when given (float64 needs `jax.enable_x64`)."""
    import equinox as eqx
    import jax.numpy as jnp

    sk = skeleton(cfg, params, set())
    leaves = [jnp.asarray(v, dtype) for v in sk.frozen]
    return eqx.combine(combine(sk, leaves, {}), sk.static)
