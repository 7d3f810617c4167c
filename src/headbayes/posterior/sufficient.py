"""Sufficient statistics of a linear Gaussian head: a log-density whose cost does not grow with N.

When the features φ before the model's linear last stage are cached (`headbayes.models.prefix`),
only that stage's leaves are sampled and the likelihood is Gaussian (capability
`linear_gaussian`), the sum of squared residuals is a quadratic in the head's numbers
Θ = [Wᵀ; bᵀ] ((width + 1) × out). With A = [φ, 1] and the residual r₀ = y − AΘ₀ at the
start Θ₀ (centring keeps float32 round-off small):

  Σ (f(x) − y)² = r₀ᵀr₀ − 2 Σ (Θ − Θ₀) ⊙ Aᵀr₀ + Σ (Θ − Θ₀) ⊙ AᵀA (Θ − Θ₀),

so every step costs O(width² · out) instead of O(N · width · out). The statistics are computed
once on the device before the loop. Used by full-batch samplers when width + 1 ≤ N and
width + 1 ≤ the run's step count (so the one-off O(N · width²) never exceeds the sampling);
minibatch SG-MCMC (`sampler.batch_size` > 0) keeps the data path.
"""

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from headbayes.models.mask import node_at
from headbayes.posterior.density import plain_log_prior

__all__ = ["HeadStats", "head_stats", "head_theta", "make_stats_logdensity_fn", "worth_it"]


class HeadStats(NamedTuple):
    """The statistics of the module docstring (float32 arrays; jit arguments)."""
    gram: jax.Array  # AᵀA, (width + 1, width + 1)
    cross: jax.Array  # Aᵀr₀, (width + 1, out)
    base: jax.Array  # r₀ᵀr₀
    theta0: jax.Array  # Θ₀, (width + 1, out)
    count: jax.Array  # N · out (the `reduction: mean` divisor)


def head_theta(model, head: str) -> jax.Array:
    """Θ = [Wᵀ; bᵀ] of the linear layer at dotted path `head`."""
    layer = node_at(model, head)
    return _theta(layer.weight, layer.bias)


def _theta(weight, bias) -> jax.Array:
    return jnp.concatenate([weight.T, bias[None, :]], axis=0)


def worth_it(width: int, n: int, total_steps: int) -> bool:
    """The rule of the module docstring: width + 1 ≤ N and width + 1 ≤ the run's steps."""
    return width + 1 <= n and width + 1 <= total_steps


@jax.jit
def _stats(phi, y, weight, bias) -> HeadStats:
    theta0 = _theta(weight, bias)  # head_theta, inside the program
    a = jnp.concatenate([phi, jnp.ones((phi.shape[0], 1), phi.dtype)], axis=1)
    r0 = y - a @ theta0
    return HeadStats(a.T @ a, a.T @ r0, jnp.sum(r0**2), theta0,
                     jnp.float32(y.size))


def head_stats(phi, y, model, head: str) -> HeadStats:
    """The statistics of cached features `phi` (N, width) and targets `y` (N, out), centred
    at the head of `model`."""
    layer = node_at(model, head)
    return _stats(jnp.asarray(phi), jnp.asarray(y), layer.weight, layer.bias)


def make_stats_logdensity_fn(static, from_squares: Callable, head: str,
                             log_prior_fn: Callable | None = None) -> Callable:
    """`logdensity_fn(position, problem)` with `problem.x` a `HeadStats`: the likelihood's
    `from_squares(Σ(f − y)², count, sigma, data_scale)` plus the log prior (`log_prior_fn
    (position, problem)`, by default the plain Gaussian one)."""
    import equinox as eqx

    log_prior_fn = log_prior_fn or plain_log_prior

    def logdensity_fn(position, problem):
        stats = problem.x
        model = eqx.combine(position, problem.frozen, static)
        squares = _squares(stats)(head_theta(model, head) - stats.theta0)
        return (from_squares(squares, stats.count, problem.likelihood_sigma, problem.data_scale)
                + log_prior_fn(position, problem))

    return logdensity_fn


def _squares(stats: HeadStats) -> Callable:
    """δ ↦ Σ(f − y)² at Θ = Θ₀ + δ, with the derivative 2(AᵀA δ − Aᵀr₀) written out: AᵀA is
    symmetric, so one product with it serves the value and the gradient (automatic
    differentiation would take two). Differentiable to any order in δ; the statistics are
    constants (differentiating through them is an error)."""

    @jax.custom_jvp
    def squares(delta):
        return stats.base + jnp.sum(delta * (stats.gram @ delta - 2 * stats.cross))

    @squares.defjvp
    def squares_jvp(primals, tangents):
        (delta,), (delta_dot,) = primals, tangents
        slope = stats.gram @ delta - stats.cross
        return stats.base + jnp.sum(delta * (slope - stats.cross)), 2 * jnp.sum(delta_dot * slope)

    return squares
