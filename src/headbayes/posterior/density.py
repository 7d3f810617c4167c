"""Log-density over the sampled leaves only; frozen leaves enter as constants.

The log-likelihood is the run's likelihood entry (`headbayes.posterior.likelihoods`); the prior is
-||theta||^2 / (2 prior.sigma^2) over the sampled leaves (docs/config.md, Numerical conventions),
or the families, scales and centres of `headbayes.posterior.priors`.

A minibatch of n of the N points (`minibatch`) estimates the log-likelihood without bias
(`Problem.data_scale` = N/n). With cached features (`headbayes.models.prefix`) `Problem.x` holds
the output of the frozen stages before `start_stage`, and the model runs from that stage on.
"""

from typing import Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from headbayes.models import run_from

__all__ = ["Problem", "make_logdensity_fn", "log_prior", "plain_log_prior", "minibatch"]


class Problem(NamedTuple):
    """Everything the log-density reads besides the position; passed as jit arguments."""

    frozen: object
    x: jax.Array
    y: jax.Array
    likelihood_sigma: jax.Array
    prior_sigma: jax.Array
    data_scale: jax.Array = 1.0  # N / n for a minibatch of n of the N points
    prior_center: dict = None  # {path: initial value} of leaves with prior.center=initial


def minibatch(problem: Problem, indices) -> Problem:
    """`problem` restricted to the points `indices` (taken from the full data, which stays on
    the device), with the N/n likelihood scale."""
    scale = problem.x.shape[0] / indices.shape[0]
    return problem._replace(x=problem.x[indices], y=problem.y[indices],
                            data_scale=jnp.float32(scale))


def log_prior(position, sigma):
    squares = sum(jnp.sum(leaf**2) for leaf in jax.tree_util.tree_leaves(position))
    return -squares / (2 * sigma**2)


def plain_log_prior(position, problem: Problem):
    """The default prior: Gaussian, centred at 0, scale `problem.prior_sigma` for every leaf."""
    return log_prior(position, problem.prior_sigma)


def make_logdensity_fn(static, log_likelihood: Callable, start_stage: int = 0,
                       log_prior_fn: Callable = plain_log_prior) -> Callable:
    """`logdensity_fn(position, problem)`: log prior + log likelihood of the recombined model,
    run from stage `start_stage` on (see `headbayes.models`) over `problem.x`.
    `log_likelihood(prediction, y, scale, data_scale)` is a `Likelihood`'s; `log_prior_fn
    (position, problem)` the prior's (`headbayes.posterior.priors.make_log_prior`)."""

    def logdensity_fn(position, problem: Problem):
        model = eqx.combine(position, problem.frozen, static)
        prediction = run_from(model, problem.x, start_stage)
        return (log_likelihood(prediction, problem.y, problem.likelihood_sigma,
                               problem.data_scale)
                + log_prior_fn(position, problem))

    return logdensity_fn
