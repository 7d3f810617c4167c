"""Likelihood registry: the log-likelihood of the targets given the network's output.

`gaussian` (DESIGN.md §3): residual r = (f(x) − y) / sigma; `reduction: mean` gives
−mean(r²) (the seed's tempered posterior), `reduction: sum` gives −½ Σ r² (the proper Gaussian
likelihood; a minibatch of n of N points scales it by N/n). It is conjugate with a linear head
(capability `linear_gaussian`: the exact reference applies) and its predictive adds
N(0, sigma²) observation noise to the function. `sigma` is a number, learned before sampling
(`evidence`, `validation`: headbayes.hyperparameters) or sampled with the leaves (`sampled`,
with the prior `sigma_prior`: headbayes.noise).
"""

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

from headbayes.checks import choice
from headbayes.errors import ConfigError
from headbayes.hyperparameters import check_scale
from headbayes.registry import Registry

__all__ = ["LIKELIHOODS", "Likelihood", "GaussianOptions", "make_likelihood",
           "gaussian_log_likelihood", "gaussian_from_squares", "REDUCTIONS"]

LIKELIHOODS = Registry("likelihood")
REDUCTIONS = ("mean", "sum")


class Likelihood(NamedTuple):
    """`log_likelihood(prediction, y, scale, data_scale)`: scale is `likelihood.sigma` as an
    array (a jit argument, so sweeps share one program); `noise_sd`: the observation noise the
    predictive adds, in the units of the data the model sees; `from_squares(Σ(f − y)², count,
    scale, data_scale)`: the same log-likelihood from the sum of squared residuals over `count`
    numbers (families with capability `linear_gaussian`; `headbayes.sufficient`)."""

    log_likelihood: Callable
    noise_sd: float
    from_squares: Callable | None = None


@dataclass
class GaussianOptions:
    name: str = "gaussian"
    sigma: Any = 0.05  # a number > 0, evidence, validation (hyperparameters), sampled (noise)
    reduction: str = "mean"
    sigma_prior: str = "half_normal"  # with sigma=sampled: half_normal | inverse_gamma
    sigma_prior_scale: float = 1.0  # half-normal scale c; inverse-gamma on σ²: scale c²
    sigma_prior_shape: float = 2.0  # inverse-gamma on σ²: shape a


def gaussian_log_likelihood(prediction, y, sigma, reduction: str, data_scale=1.0):
    import jax.numpy as jnp

    return gaussian_from_squares(jnp.sum((prediction - y) ** 2), y.size, sigma, reduction,
                                 data_scale)


def gaussian_from_squares(sum_of_squares, count, sigma, reduction: str, data_scale=1.0):
    """The Gaussian log-likelihood from Σ(f − y)² over `count` numbers (the constant dropped)."""
    squares = sum_of_squares / sigma**2  # Σ r²; one division, not one a point
    if reduction == "mean":
        return -squares / count
    return -0.5 * data_scale * squares


def _check_gaussian(options, cfg) -> None:
    from headbayes.noise import check_noise_prior

    check_scale("likelihood.sigma", options.sigma, sampled_ok=True)
    choice("likelihood.reduction", options.reduction, REDUCTIONS)
    check_noise_prior(options)
    if options.sigma == "sampled" and cfg.sampler.temperature != 1:
        raise ConfigError(f"`likelihood.sigma=sampled` needs sampler.temperature=1, got "
                          f"{cfg.sampler.temperature}")


@LIKELIHOODS.register("gaussian", GaussianOptions, check=_check_gaussian,
                      caps={"linear_gaussian"})
def make_gaussian(options: GaussianOptions) -> Likelihood:
    def log_likelihood(prediction, y, sigma, data_scale=1.0):
        return gaussian_log_likelihood(prediction, y, sigma, options.reduction, data_scale)

    def from_squares(sum_of_squares, count, sigma, data_scale=1.0):
        return gaussian_from_squares(sum_of_squares, count, sigma, options.reduction, data_scale)

    return Likelihood(log_likelihood, options.sigma, from_squares)


def make_likelihood(options) -> Likelihood:
    return LIKELIHOODS[options.name].build(options)
