"""Function draws through the model itself (JAX), for the report and `predict`.

The run's model is rebuilt from its config; every draw of the chain replaces the sampled leaves,
the frozen leaves come from params.npz. Stages before the first sampled one (see
`headbayes.models`) run once per batch of draws on the inputs; the rest runs for batches of
draws (`vmap`), each batch's work under `max_bytes`, the last batch padded so one compiled
program serves all. Programs are compiled with `xla.jit_once` (they run once per job) and kept
by `engine.programs` under the model's key and the sampled leaves.
"""

import numpy as np

from headbayes.core import xla
from headbayes.engine.programs import kept
from headbayes.models import features, model_key, run_from
from headbayes.models.skeleton import Skeleton, combine, skeleton

__all__ = ["function_draws", "MAX_BYTES"]

MAX_BYTES = 256 * 2**20  # the work of one batch of draws


def _program(cfg, sk: Skeleton, sampled: tuple):
    """The jitted `(sampled_batch, frozen, x) -> f` of this model and mask."""
    return kept(("draws", model_key(cfg), sampled), lambda: _compiled(sk))


def _compiled(sk: Skeleton):
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    @xla.jit_once  # compiled once per job, run on a few batches: XLA's -O1 compiles it faster
    def run(sampled_batch, frozen, x):
        h = x
        if sk.start > 0:  # frozen stages, once a batch; zeros stand in for the sampled leaves
            zeros = {p: jnp.zeros(v.shape[1:], v.dtype) for p, v in sampled_batch.items()}
            h = features(eqx.combine(combine(sk, frozen, zeros), sk.static), x, sk.start)

        def one(values):
            model = eqx.combine(combine(sk, frozen, values), sk.static)
            return run_from(model, h, sk.start)

        return jax.vmap(one)(sampled_batch)

    return run


def _batch_size(sk: Skeleton, pooled: dict, n_points: int, max_bytes: int) -> int:
    """Draws per batch: a draw's work is taken as n_points × the largest leaf (a proxy for the
    widest activation), in float32."""
    total = next(iter(pooled.values())).shape[0]
    sizes = [np.size(v) for v in sk.frozen if v is not None]
    sizes += [np.size(v[0]) for v in pooled.values()]
    per_draw = 4 * max(1, n_points) * max(sizes)
    return int(max(1, min(total, max_bytes // per_draw)))


def function_draws(cfg, params: dict, chain: dict, x: np.ndarray,
                   max_bytes: int = MAX_BYTES) -> np.ndarray:
    """f(x) for every draw: array (chain, draw, n, out), float32. `chain` maps the sampled
    leaves' paths to arrays (chain, draw, *shape); `params` holds every leaf."""
    import jax.numpy as jnp

    sk = skeleton(cfg, params, set(chain))
    lead = next(iter(chain.values())).shape[:2]
    total = lead[0] * lead[1]
    pooled = {p: np.asarray(v).reshape((total,) + v.shape[2:]) for p, v in chain.items()}
    batch = _batch_size(sk, pooled, x.shape[0], max_bytes)
    run = _program(cfg, sk, tuple(sorted(chain)))
    frozen = [None if v is None else jnp.asarray(v) for v in sk.frozen]
    x = jnp.asarray(x)
    out = None  # filled batch by batch (no list of batches to concatenate)
    for first in range(0, total, batch):
        part = {p: v[first:first + batch] for p, v in pooled.items()}
        size = next(iter(part.values())).shape[0]
        if size < batch:  # pad: the same compiled program for the last batch
            part = {p: np.concatenate([v, np.repeat(v[-1:], batch - size, axis=0)])
                    for p, v in part.items()}
        values = np.asarray(run(part, frozen, x))
        if out is None:
            out = np.empty((total,) + values.shape[1:], values.dtype)
        out[first:first + size] = values[:size]
    return out.reshape(lead + out.shape[1:])
