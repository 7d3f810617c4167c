"""A physics run's residual on the eval grid: L[u] − f there, for the posterior's draws, with f
the data's true forcing (`headbayes.posterior.operators`)."""

import numpy as np

from headbayes.models.skeleton import combine, skeleton
from headbayes.posterior.operators import forcing_values, operator_of, solution_of
from headbayes.posterior.physics import (COEFFICIENT_PREFIX, known_coefficients,
                                         operator_values, unknown_names)

__all__ = ["pde_residuals", "MAX_DRAWS"]

MAX_DRAWS = 200  # evenly spaced over the pooled draws


def pde_residuals(cfg, params: dict, model_chain: dict, chain: dict, x: np.ndarray,
                  max_draws: int = MAX_DRAWS) -> np.ndarray:
    """(draws, n) float64: L[u](x) − f(x) for at most `max_draws` of the pooled draws, each
    with its own unknown coefficients (`chain`'s likelihood.NAME) and the known ones."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    sk = skeleton(cfg, params, set(model_chain))
    pooled = {p: np.asarray(v).reshape((-1,) + v.shape[2:]) for p, v in model_chain.items()}
    total = len(next(iter(pooled.values())))
    take = np.unique(np.linspace(0, total - 1, min(total, max_draws)).astype(int))
    values = {p: jnp.asarray(v[take]) for p, v in pooled.items()}
    sampled = {n: jnp.asarray(np.asarray(chain[COEFFICIENT_PREFIX + n]).reshape(-1)[take])
               for n in unknown_names(cfg.likelihood)}
    known = known_coefficients(cfg.likelihood)
    operator = operator_of(cfg.likelihood.operator, "likelihood.operator")
    frozen = [None if v is None else jnp.asarray(v) for v in sk.frozen]
    points = jnp.asarray(x, jnp.float32)

    def one(leaves, coefficients):
        model = eqx.combine(combine(sk, frozen, leaves), sk.static)
        return operator_values(model, points, operator, {**known, **coefficients})

    lhs = np.asarray(jax.jit(jax.vmap(one))(values, sampled), np.float64)
    data = cfg.data
    truth = forcing_values(operator_of(data.operator), solution_of(data.solution)[0],
                           data.coefficients, np.asarray(x, np.float64))
    return lhs - truth
