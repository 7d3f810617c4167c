"""Function draws through the model itself (JAX), for the report and `predict`.

The run's model is rebuilt from its config; every draw of the chain replaces the sampled leaves,
the frozen leaves come from params.npz. Stages before the first sampled one (see
`headbayes.models`) run once on the inputs; the rest runs for batches of draws (`vmap`), each
batch's work under `max_bytes`, the last batch padded so one compiled program serves all.
"""

import numpy as np

__all__ = ["Skeleton", "skeleton", "function_draws"]

from typing import NamedTuple


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

    from headbayes.mask import leaf_path
    from headbayes.models import first_sampled_stage, is_inexact_shape, model_structure

    model = model_structure(cfg)  # the values come from `params`: nothing to compute
    arrays, static = eqx.partition(model, is_inexact_shape)
    flat, treedef = jax.tree_util.tree_flatten_with_path(arrays)
    paths = [leaf_path(p) for p, _ in flat]
    values = [None if p in sampled else np.asarray(params[p]) for p in paths]
    start = first_sampled_stage(model, {p: p in sampled for p in paths})
    return Skeleton(static, values, treedef, paths, start)


def _combine(sk: Skeleton, frozen: list, sampled_values: dict):
    import jax

    leaves = [sampled_values[p] if v is None else v for p, v in zip(sk.paths, frozen)]
    return jax.tree_util.tree_unflatten(sk.treedef, leaves)


def function_draws(cfg, params: dict, chain: dict, x: np.ndarray,
                   max_bytes: int = 256 * 2**20) -> np.ndarray:
    """f(x) for every draw: array (chain, draw, n, out), float32. `chain` maps the sampled
    leaves' paths to arrays (chain, draw, *shape); `params` holds every leaf."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from headbayes.models import features, run_from

    sk = skeleton(cfg, params, set(chain))
    lead = next(iter(chain.values())).shape[:2]
    total = lead[0] * lead[1]
    pooled = {p: np.asarray(v).reshape((total,) + v.shape[2:]) for p, v in chain.items()}
    frozen = [None if v is None else jnp.asarray(v) for v in sk.frozen]
    h = jnp.asarray(x)
    if sk.start > 0:  # the sampled leaves do not enter these stages: zeros stand in for them
        zeros = {p: jnp.zeros(v.shape[1:], v.dtype) for p, v in pooled.items()}
        h = jax.jit(lambda frozen, x: features(
            eqx.combine(_combine(sk, frozen, zeros), sk.static), x, sk.start))(frozen, h)
    widest = max(int(np.prod(np.shape(v))) for v in [*sk.frozen, *pooled.values()]
                 if v is not None and np.ndim(v) > 0) if sk.paths else 1
    per_draw = 4 * max(1, h.shape[0]) * max(widest, int(np.prod(h.shape[1:])))
    batch = int(max(1, min(total, max_bytes // per_draw)))

    @jax.jit
    def run(sampled_batch, frozen, h):
        def one(values):
            model = eqx.combine(_combine(sk, frozen, values), sk.static)
            return run_from(model, h, sk.start)

        return jax.vmap(one)(sampled_batch)

    outputs = []
    for first in range(0, total, batch):
        part = {p: v[first:first + batch] for p, v in pooled.items()}
        size = next(iter(part.values())).shape[0]
        if size < batch:  # pad: the same compiled program for the last batch
            part = {p: np.concatenate([v, np.repeat(v[-1:], batch - size, axis=0)])
                    for p, v in part.items()}
        outputs.append(np.asarray(run(part, frozen, h))[:size])
    out = np.concatenate(outputs)
    return out.reshape(lead + out.shape[1:])


def model_with(cfg, params: dict, dtype=None):
    """The model of `cfg` with every array leaf from `params` ({path: array}), cast to
    `dtype` when given (float64 needs `jax.enable_x64`)."""
    import equinox as eqx
    import jax.numpy as jnp

    sk = skeleton(cfg, params, set())
    leaves = [jnp.asarray(v, dtype) for v in sk.frozen]
    return eqx.combine(_combine(sk, leaves, {}), sk.static)
