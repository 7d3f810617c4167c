"""Log-density over the sampled leaves only; frozen leaves enter as constants.

Conventions (DESIGN.md §3):
- residual r = (f(x) - y) / likelihood.sigma;
- `reduction: mean` -> log-likelihood -mean(r^2) (the seed's tempered posterior);
  `reduction: sum` -> -1/2 sum(r^2) (the proper Gaussian likelihood);
- prior -||theta||^2 / (2 prior.sigma^2) over the sampled leaves.

A minibatch of n of the N points (`minibatch`) estimates the log-likelihood without bias:
`sum` scales its sum by N/n (`Problem.data_scale`), `mean` is already a mean.
With cached features (`headbayes.features`) `Problem.x` holds the output of the frozen layers
before `start_layer`, and the model is applied from that layer on.
"""

from typing import Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

__all__ = ["Problem", "make_logdensity_fn", "log_likelihood", "log_prior", "minibatch"]


class Problem(NamedTuple):
    """Everything the log-density reads besides the position; passed as jit arguments."""

    frozen: object
    x: jax.Array
    y: jax.Array
    likelihood_sigma: jax.Array
    prior_sigma: jax.Array
    data_scale: jax.Array = 1.0  # N / n for a minibatch of n of the N points


def log_likelihood(prediction, y, sigma, reduction: str, data_scale=1.0):
    squares = jnp.sum((prediction - y) ** 2) / sigma**2  # Σ r²; one division, not one a point
    if reduction == "mean":
        return -squares / y.size
    return -0.5 * data_scale * squares


def minibatch(problem: Problem, indices) -> Problem:
    """`problem` restricted to the points `indices` (taken from the full data, which stays on
    the device), with the N/n likelihood scale."""
    scale = problem.x.shape[0] / indices.shape[0]
    return problem._replace(x=problem.x[indices], y=problem.y[indices],
                            data_scale=jnp.float32(scale))


def log_prior(position, sigma):
    squares = sum(jnp.sum(leaf**2) for leaf in jax.tree_util.tree_leaves(position))
    return -squares / (2 * sigma**2)


def make_logdensity_fn(static, reduction: str, start_layer: int = 0) -> Callable:
    """`logdensity_fn(position, problem)`: log prior + log likelihood of the recombined model,
    applied from layer `start_layer` on to `problem.x`."""

    def logdensity_fn(position, problem: Problem):
        model = eqx.combine(position, problem.frozen, static)
        prediction = model.apply(problem.x, start_layer)
        return (log_likelihood(prediction, problem.y, problem.likelihood_sigma, reduction,
                               problem.data_scale)
                + log_prior(position, problem.prior_sigma))

    return logdensity_fn
