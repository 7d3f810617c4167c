"""A sampled noise scale (`likelihood.sigma=sampled`): σ joins the sampled numbers as log σ.

The sampler's position is then `WithNoise(model, log_sigma)`; the log-density adds, to the
likelihood at σ = exp(log σ) and the prior of the model's leaves,
- the Gaussian normaliser −count · log σ (count = N · outputs; `reduction: sum` only),
- the log prior of σ and the log-Jacobian of σ = exp(u):
  `half_normal` (scale c): −σ²/(2c²) + u;
  `inverse_gamma` on σ² (shape a, scale b = c²): −2a·u − b·e^(−2u).
Every MCMC sampler samples u with the model's leaves. The chain stores it like any leaf, as
`likelihood.log_sigma` (shape ()); the report and `predict` use σ of each draw.
"""

from typing import Callable, NamedTuple

from headbayes.core.checks import choice, positive_float
from headbayes.posterior.sufficient import HeadStats

__all__ = ["WithNoise", "NOISE_LEAF", "NOISE_PRIORS", "log_noise_prior", "with_sampled_noise",
           "is_sampled", "check_noise_prior"]

NOISE_LEAF = "likelihood.log_sigma"
NOISE_PRIORS = ("half_normal", "inverse_gamma")


class WithNoise(NamedTuple):
    model: object  # the model's sampled leaves (an equinox partition)
    log_sigma: object  # log σ


def is_sampled(likelihood_options) -> bool:
    return getattr(likelihood_options, "sigma", None) == "sampled"


def log_noise_prior(options) -> Callable:
    """u = log σ -> log p(σ) + u (the density of u), constants dropped."""
    import jax.numpy as jnp

    c = float(options.sigma_prior_scale)
    if options.sigma_prior == "half_normal":
        return lambda u: -jnp.exp(2 * u) / (2 * c**2) + u
    a = float(options.sigma_prior_shape)
    return lambda u: -2 * a * u - c**2 * jnp.exp(-2 * u)


def with_sampled_noise(logdensity_fn: Callable, options) -> Callable:
    """`logdensity_fn(position, problem)` over `WithNoise` positions (see the module
    docstring); `logdensity_fn` is the model's, at `problem.likelihood_sigma`."""
    import jax.numpy as jnp

    noise_prior = log_noise_prior(options)

    def fn(position: WithNoise, problem):
        u = position.log_sigma
        at = problem._replace(likelihood_sigma=jnp.exp(u))
        count = (problem.x.count if isinstance(problem.x, HeadStats)
                 else problem.y.size * problem.data_scale)
        return logdensity_fn(position.model, at) - count * u + noise_prior(u)

    return fn








def check_noise_prior(options) -> None:
    choice("likelihood.sigma_prior", options.sigma_prior, NOISE_PRIORS)
    positive_float("likelihood.sigma_prior_scale", options.sigma_prior_scale)
    positive_float("likelihood.sigma_prior_shape", options.sigma_prior_shape)
