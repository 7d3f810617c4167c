"""The physics likelihood (`likelihood=physics`): Gaussian residuals of a PDE and of values.

Each training row of the `pde` data (`headbayes.posterior.operators`) is a point x with
[value, term]: a forcing sensor (term 0) has residual L[u](x) − f with noise sd `sigma_f`, a
value of u (term 1) has residual u(x) − value with sd `sigma_u`; u is the network's first output
and L the operator (derivatives with respect to the inputs by JAX, per point). The
log-likelihood is −½ Σ (residual / sd)² (times N/n for a minibatch of n of the N rows).

The operator's coefficients are `likelihood.coefficients` (numbers), except those named in
`likelihood.unknown`, {name: {mean, sd}}: these are sampled with the masked leaves under a
Gaussian prior. The sampler's position is then `WithCoefficients(model, {name: value})`; the
chain stores each as `likelihood.NAME` (shape ()); the report gives their posterior.
With a linear operator and a linear head, and nothing unknown, the posterior is Gaussian
(`headbayes.analysis.exact`).
"""

from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

from headbayes.core.checks import positive_float, require
from headbayes.core.errors import ConfigError
from headbayes.models.base import forward
from headbayes.models.bodies import body_entry
from headbayes.posterior.likelihoods import GAUSSIAN_NOISE, LIKELIHOODS, Likelihood
from headbayes.posterior.operators import FORCING, operator_of

__all__ = ["PhysicsOptions", "WithCoefficients", "COEFFICIENT_PREFIX", "is_physics",
           "coefficient_leaves", "physics_logdensity_fn", "start_position", "predicted_terms",
           "physics_loss", "unknown_names", "coefficient_draws", "coefficient_log_prior"]

COEFFICIENT_PREFIX = "likelihood."


@dataclass
class PhysicsOptions:
    name: str = "physics"
    operator: str = "poisson1d"  # as data.operator
    coefficients: dict = field(default_factory=dict)  # known values, {name: number}
    unknown: dict = field(default_factory=dict)  # sampled: {name: {mean: m, sd: s}}
    sigma_f: float = 0.01  # noise sd of a forcing sensor
    sigma_u: float = 0.01  # noise sd of a value of u
    reduction: str = "sum"


class WithCoefficients(NamedTuple):
    model: object  # the model's sampled leaves (an equinox partition)
    coefficients: dict  # {name: value} of likelihood.unknown


def is_physics(likelihood_options) -> bool:
    return "physics" in LIKELIHOODS[likelihood_options.name].caps


def unknown_names(likelihood_options) -> list[str]:
    return sorted(getattr(likelihood_options, "unknown", {}) or {})


def coefficient_leaves(likelihood_options) -> dict:
    """{chain leaf name: shape ()} of the sampled coefficients."""
    return {COEFFICIENT_PREFIX + n: () for n in unknown_names(likelihood_options)}


def coefficient_draws(chain: dict, likelihood_options) -> dict:
    """{name: draws (chain, draw) float64} of the sampled coefficients."""
    return {n: np.asarray(chain[COEFFICIENT_PREFIX + n], np.float64)
            for n in unknown_names(likelihood_options)}


def predicted_terms(model, x, y, operator, coefficients: dict):
    """Per row: L[u](x) for a forcing sensor, u(x) for a value (the model's first output)."""
    import jax
    import jax.numpy as jnp

    def u(point):
        return forward(model, point[None])[0, 0]

    lhs = jax.vmap(lambda p: operator.apply(u, p, coefficients))(x)
    values = forward(model, x)[:, 0]
    return jnp.where(y[:, 1] == FORCING, lhs, values)


def _log_likelihood(model, x, y, operator, coefficients, options, data_scale=1.0):
    import jax.numpy as jnp

    sd = jnp.where(y[:, 1] == FORCING, np.float32(options.sigma_f), np.float32(options.sigma_u))
    r = (predicted_terms(model, x, y, operator, coefficients) - y[:, 0]) / sd
    return -0.5 * data_scale * jnp.sum(r**2)


def coefficient_log_prior(values: dict, options):
    """Σ −½((value − mean) / sd)² over the unknown coefficients."""
    return sum(-0.5 * ((values[n] - options.unknown[n]["mean"]) / options.unknown[n]["sd"]) ** 2
               for n in unknown_names(options))


def _known(options) -> dict:
    import jax.numpy as jnp

    return {k: jnp.float32(v) for k, v in options.coefficients.items()
            if k not in options.unknown}


def physics_logdensity_fn(static, options, log_prior_fn: Callable) -> Callable:
    """`logdensity_fn(position, problem)`: the log prior of the leaves (`log_prior_fn`) and of
    the unknown coefficients plus the log-likelihood of the module docstring."""
    import equinox as eqx

    operator = operator_of(options.operator, "likelihood.operator")

    def logdensity_fn(position, problem):
        coefficients, extra = _known(options), 0.0
        if isinstance(position, WithCoefficients):
            coefficients = {**coefficients, **position.coefficients}
            extra = coefficient_log_prior(position.coefficients, options)
            position = position.model
        model = eqx.combine(position, problem.frozen, static)
        return (_log_likelihood(model, problem.x, problem.y, operator, coefficients, options,
                                problem.data_scale)
                + log_prior_fn(position, problem) + extra)

    return logdensity_fn


def start_position(position, options, start: dict | None = None):
    """`position` with the unknown coefficients added (at `start`, default their prior means),
    or `position` itself when none is unknown."""
    import jax.numpy as jnp

    names = unknown_names(options)
    if not names:
        return position
    start = start or {}
    return WithCoefficients(position, {n: jnp.float32(start.get(n, options.unknown[n]["mean"]))
                                       for n in names})


def physics_loss(options) -> Callable:
    """loss(model, coefficients, x, y): the mean over rows of ½ (residual / sd)², the
    deterministic PINN's loss (`coefficients`: the unknown ones' values)."""
    operator = operator_of(options.operator, "likelihood.operator")

    def loss(model, coefficients, x, y):
        return -_log_likelihood(model, x, y, operator, {**_known(options), **coefficients},
                                options) / x.shape[0]

    return loss


def _check_physics(options: PhysicsOptions, cfg) -> None:
    if cfg.data.name != "pde":
        raise ConfigError(f"likelihood 'physics' needs data=pde (its rows are sensors of f and "
                          f"of u), got data '{cfg.data.name}'")
    require(options.reduction == "sum", "likelihood.reduction", options.reduction,
            "sum (the physics likelihood is a proper Gaussian one)")
    positive_float("likelihood.sigma_f", options.sigma_f)
    positive_float("likelihood.sigma_u", options.sigma_u)
    operator = operator_of(options.operator, "likelihood.operator")
    if not isinstance(options.coefficients, dict):
        raise ConfigError(f"`likelihood.coefficients` must map names to numbers, got "
                          f"{options.coefficients!r}")
    if not isinstance(options.unknown, dict):
        raise ConfigError(f"`likelihood.unknown` must map names to {{mean, sd}}, got "
                          f"{options.unknown!r}")
    for name, prior in options.unknown.items():
        if not isinstance(prior, dict) or set(prior) != {"mean", "sd"}:
            raise ConfigError(f"`likelihood.unknown.{name}` must be {{mean: number, sd: number}}"
                              f", got {prior!r}")
        require(isinstance(prior["mean"], (int, float)) and np.isfinite(prior["mean"]),
                f"likelihood.unknown.{name}.mean", prior["mean"], "a finite number")
        positive_float(f"likelihood.unknown.{name}.sd", prior["sd"])
        if operator.coefficients and name not in operator.coefficients:
            raise ConfigError(f"likelihood.unknown.{name}: operator '{options.operator}' has no "
                              f"coefficient {name}; its coefficients: "
                              f"{', '.join(operator.coefficients)}")
    missing = [n for n in operator.coefficients
               if n not in options.coefficients and n not in options.unknown]
    if missing:
        raise ConfigError(f"likelihood.operator '{options.operator}' needs a value or a prior "
                          f"for {', '.join(missing)} (likelihood.coefficients or "
                          f"likelihood.unknown)")
    if "moves" in body_entry(cfg).caps:
        raise ConfigError("likelihood 'physics' takes body.mode frozen or pretrained (the joint "
                          "body trains on the data likelihood)")


@LIKELIHOODS.register("physics", PhysicsOptions, check=_check_physics, caps={"physics"},
                      kind="regression", model_outputs=lambda n: n,
                      loss=None, predictive=GAUSSIAN_NOISE)
def make_physics(options: PhysicsOptions) -> Likelihood:
    def log_likelihood(prediction, y, scale=None, data_scale=1.0):
        raise TypeError("the physics likelihood needs the model (physics_logdensity_fn)")

    return Likelihood(log_likelihood, float(options.sigma_u))
