"""Log-density over the sampled leaves only; frozen leaves enter as constants.

Conventions (DESIGN.md §3):
- residual r = (f(x) - y) / likelihood.sigma;
- `reduction: mean` -> log-likelihood -mean(r^2) (the seed's tempered posterior);
  `reduction: sum` -> -1/2 sum(r^2) (the proper Gaussian likelihood);
- prior -||theta||^2 / (2 prior.sigma^2) over the sampled leaves.
"""

from typing import Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

__all__ = ["Problem", "make_logdensity_fn", "log_likelihood", "log_prior"]


class Problem(NamedTuple):
    """Everything the log-density reads besides the position; passed as jit arguments."""

    frozen: object
    x: jax.Array
    y: jax.Array
    likelihood_sigma: jax.Array
    prior_sigma: jax.Array


def log_likelihood(prediction, y, sigma, reduction: str):
    r = (prediction - y) / sigma
    if reduction == "mean":
        return -jnp.mean(r**2)
    return -0.5 * jnp.sum(r**2)


def log_prior(position, sigma):
    squares = sum(jnp.sum(leaf**2) for leaf in jax.tree_util.tree_leaves(position))
    return -squares / (2 * sigma**2)


def make_logdensity_fn(static, reduction: str) -> Callable:
    """`logdensity_fn(position, problem)`: log prior + log likelihood of the recombined model."""

    def logdensity_fn(position, problem: Problem):
        model = eqx.combine(position, problem.frozen, static)
        prediction = model(problem.x)
        return (log_likelihood(prediction, problem.y, problem.likelihood_sigma, reduction)
                + log_prior(position, problem.prior_sigma))

    return logdensity_fn
