"""The network linearised in its sampled leaves: f(x; θ) ≈ f(x; θ*) + J (θ − θ*), J = ∂f/∂θ at θ*.

For a mask beyond a linear head the evidence of `headbayes.analysis.hyperparameters` is that of
this linear model (the generalised Gauss-Newton Laplace evidence, as laplace-torch's, but exact for
the linearisation: its mean is re-solved for each σ and s, where laplace-torch keeps θ*). θ* are
the run's parameters (trained, or initial with a frozen body), which are not re-optimised as the
scales change. Computed in float64, rows (point, output) point-major, θ the sampled leaves in path
order; the Jacobian must fit in `MAX_BYTES`.
"""

import numpy as np

from headbayes.core.errors import ConfigError
from headbayes.models import forward
from headbayes.models.mask import build_mask
from headbayes.models.skeleton import model_with

__all__ = ["linearised_design", "MAX_BYTES"]

MAX_BYTES = 512 * 2**20


def linearised_design(cfg, params: dict, sampled: list, x: np.ndarray):
    """(J, offset) with f(x; θ) ≈ J θ + offset near the run's parameters (float64)."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    sizes = {p: int(np.prod(np.shape(params[p]))) for p in sampled}
    out = int(np.prod(forward_shape(cfg, params, x[:1])[1:]))
    needed = 8 * len(x) * out * sum(sizes.values())
    if needed > MAX_BYTES:
        raise ConfigError(f"learning the scales of this mask needs a Jacobian of "
                          f"{needed / 2**20:.0f} MB (N {len(x)} x {out} outputs x "
                          f"{sum(sizes.values())} sampled numbers), over {MAX_BYTES // 2**20} MB; "
                          f"set likelihood.sigma and prior.sigma to numbers or sample fewer")
    with jax.enable_x64(True):
        model = model_with(cfg, params, np.float64)
        values, static = eqx.partition(model, eqx.is_inexact_array)
        mask = build_mask(values, list(sampled), [])
        position, frozen = eqx.partition(values, mask)
        flat, unravel = ravel_pytree(position)

        def f(theta):
            return forward(eqx.combine(unravel(theta), frozen, static),
                           jnp.asarray(x, np.float64)).reshape(-1)

        at = np.asarray(f(flat))
        jac = np.asarray(jax.jacfwd(f)(flat) if flat.size <= at.size else jax.jacrev(f)(flat))
    return jac, at - jac @ np.asarray(flat)


def forward_shape(cfg, params: dict, x: np.ndarray) -> tuple:
    """The shape of the model's output on `x`, without computing it."""
    import equinox as eqx
    import jax

    model = model_with(cfg, params)
    return eqx.filter_eval_shape(forward, model, jax.ShapeDtypeStruct(x.shape, np.float32)).shape
