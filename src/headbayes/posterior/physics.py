"""The physics likelihood (`likelihood=physics`): Gaussian residuals of a PDE and of values.

Each training row of the `pde` data (`headbayes.posterior.operators`) is a point x with
[value, term]: a forcing sensor (term 0) has residual L[u](x) − f with noise sd `sigma_f`, a
value of u (term 1) has residual u(x) − value with sd `sigma_u`; u is the network's first output
and L the operator (derivatives with respect to the inputs by JAX, per point). The
log-likelihood is −½ Σ (residual / sd)² (times N/n for a minibatch of n of the N rows).

The operator's coefficients are `likelihood.coefficients` (numbers), except those named in
`likelihood.unknown`, {name: {mean, sd}}: these are sampled with the masked leaves under a
Gaussian prior. A noise sd set to `sampled` is sampled too, as its log u = log σ, under a
half-normal prior of scale c = `sigma_prior_scale` on σ (log density −σ²/(2c²) + u, the
Jacobian included), and the likelihood then adds its normaliser −n·u (n: the rows of its
term, times N/n for a minibatch). The sampler's position is then `WithCoefficients(model,
{name: value})`, the sampled sds named `log_sigma_f`, `log_sigma_u`; the chain stores each
number as `likelihood.NAME` (shape ()); the report gives their posterior (the sds as σ).
With a linear operator and a linear head, nothing unknown and the sds numbers, the posterior is
Gaussian (`headbayes.analysis.exact`).
"""

from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import numpy as np

from headbayes.core.checks import positive_float, require
from headbayes.core.errors import ConfigError
from headbayes.models.base import forward
from headbayes.models.bodies import body_entry
from headbayes.posterior.likelihoods import GAUSSIAN_NOISE, LIKELIHOODS, Likelihood
from headbayes.posterior.operators import FORCING, operator_of

__all__ = ["PhysicsOptions", "WithCoefficients", "COEFFICIENT_PREFIX", "is_physics", "SCALES",
           "sampled_scales", "extra_names", "residual_scales",
           "coefficient_leaves", "physics_logdensity_fn", "start_position", "predicted_terms",
           "physics_loss", "unknown_names", "coefficient_draws", "coefficient_log_prior",
           "operator_values", "known_coefficients"]

COEFFICIENT_PREFIX = "likelihood."


@dataclass
class PhysicsOptions:
    name: str = "physics"
    operator: str = "poisson1d"  # as data.operator
    coefficients: dict = field(default_factory=dict)  # known values, {name: number}
    unknown: dict = field(default_factory=dict)  # sampled: {name: {mean: m, sd: s}}
    sigma_f: Any = 0.01  # noise sd of a forcing sensor: a number or sampled
    sigma_u: Any = 0.01  # noise sd of a value of u: a number or sampled
    sigma_prior_scale: float = 1.0  # c of the half-normal prior of a sampled sd
    reduction: str = "sum"


class WithCoefficients(NamedTuple):
    model: object  # the model's sampled leaves (an equinox partition)
    coefficients: dict  # {name: value} of likelihood.unknown and the sampled log sds


def is_physics(likelihood_options) -> bool:
    return "physics" in LIKELIHOODS[likelihood_options.name].caps


SCALES = ("sigma_f", "sigma_u")


def unknown_names(likelihood_options) -> list[str]:
    return sorted(getattr(likelihood_options, "unknown", {}) or {})


def sampled_scales(likelihood_options) -> list[str]:
    """Which of sigma_f, sigma_u are `sampled`."""
    return [k for k in SCALES if getattr(likelihood_options, k, None) == "sampled"]


def extra_names(likelihood_options) -> list[str]:
    """The names of the numbers sampled besides the model's leaves: the unknown
    coefficients, then log_sigma_f / log_sigma_u when sampled."""
    return unknown_names(likelihood_options) + [
        f"log_{k}" for k in sampled_scales(likelihood_options)]


def coefficient_leaves(likelihood_options) -> dict:
    """{chain leaf name: shape ()} of the sampled coefficients and log sds."""
    return {COEFFICIENT_PREFIX + n: () for n in extra_names(likelihood_options)}


def coefficient_draws(chain: dict, likelihood_options) -> dict:
    """{name: draws (chain, draw) float64} of the sampled coefficients, and of a sampled sd
    (as σ, named sigma_f or sigma_u)."""
    draws = {n: np.asarray(chain[COEFFICIENT_PREFIX + n], np.float64)
             for n in unknown_names(likelihood_options)}
    for k in sampled_scales(likelihood_options):
        draws[k] = np.exp(np.asarray(chain[f"{COEFFICIENT_PREFIX}log_{k}"], np.float64))
    return draws


def operator_values(model, x, operator, coefficients: dict):
    """L[u] at every point of `x` (n, d), u the model's first output."""
    import jax

    def u(point):
        return forward(model, point[None])[0, 0]

    return jax.vmap(lambda p: operator.apply(u, p, coefficients))(x)


def predicted_terms(model, x, y, operator, coefficients: dict):
    """Per row: L[u](x) for a forcing sensor, u(x) for a value (the model's first output)."""
    import jax.numpy as jnp

    return jnp.where(y[:, 1] == FORCING, operator_values(model, x, operator, coefficients),
                     forward(model, x)[:, 0])


def _scale(options, key: str, values: dict, fixed: dict):
    """The sd `key` (sigma_f or sigma_u): exp of its sampled log, `fixed`'s stand-in, or the
    option's number."""
    import jax.numpy as jnp

    if f"log_{key}" in values:
        return jnp.exp(values[f"log_{key}"])
    return np.float32(fixed.get(key, getattr(options, key)))


def _log_likelihood(model, x, y, operator, values, options, data_scale=1.0, fixed=None):
    """The log-likelihood; `values` holds the known and unknown coefficients and any sampled
    log sd; `fixed` numbers stand in for sampled sds that `values` lacks (pretraining)."""
    import jax.numpy as jnp

    fixed = fixed or {}
    forcing = y[:, 1] == FORCING
    sd_f, sd_u = (_scale(options, k, values, fixed) for k in SCALES)
    r = (predicted_terms(model, x, y, operator, values) - y[:, 0]) / jnp.where(forcing, sd_f,
                                                                              sd_u)
    total = -0.5 * jnp.sum(r**2)
    for key, rows in (("sigma_f", forcing), ("sigma_u", ~forcing)):
        if f"log_{key}" in values:  # the normaliser of a sampled sd
            total = total - jnp.sum(rows) * values[f"log_{key}"]
    return data_scale * total


def coefficient_log_prior(values: dict, options):
    """Σ −½((value − mean) / sd)² over the unknown coefficients, and each sampled sd's
    half-normal prior in its log (with the Jacobian)."""
    import jax.numpy as jnp

    total = sum(-0.5 * ((values[n] - options.unknown[n]["mean"]) / options.unknown[n]["sd"])
                ** 2 for n in unknown_names(options))
    c = float(options.sigma_prior_scale)
    for key in sampled_scales(options):
        if f"log_{key}" in values:  # not in pretraining, where a sampled sd is fixed at c
            u = values[f"log_{key}"]
            total = total - jnp.exp(2 * u) / (2 * c**2) + u
    return total


def known_coefficients(options) -> dict:
    """{name: float32} of the coefficients that are not sampled."""
    import jax.numpy as jnp

    return {k: jnp.float32(v) for k, v in options.coefficients.items()
            if k not in options.unknown}


def physics_logdensity_fn(static, options, log_prior_fn: Callable) -> Callable:
    """`logdensity_fn(position, problem)`: the log prior of the leaves (`log_prior_fn`) and of
    the unknown coefficients plus the log-likelihood of the module docstring."""
    import equinox as eqx

    operator = operator_of(options.operator, "likelihood.operator")

    def logdensity_fn(position, problem):
        coefficients, extra = known_coefficients(options), 0.0
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
    """`position` with the unknown coefficients added (at `start`, default their prior means)
    and the sampled log sds (at log of `start`'s sigma_f / sigma_u, default c), or `position`
    itself when nothing else is sampled."""
    import jax.numpy as jnp

    if not extra_names(options):
        return position
    start = start or {}
    values = {n: jnp.float32(start.get(n, options.unknown[n]["mean"]))
              for n in unknown_names(options)}
    for key in sampled_scales(options):
        values[f"log_{key}"] = jnp.float32(np.log(start.get(key, options.sigma_prior_scale)))
    return WithCoefficients(position, values)


def physics_loss(options) -> Callable:
    """loss(model, coefficients, x, y): the mean over rows of ½ (residual / sd)², the
    deterministic PINN's loss (`coefficients`: the unknown ones' values; a sampled sd counts
    as `sigma_prior_scale` here)."""
    operator = operator_of(options.operator, "likelihood.operator")
    fixed = {k: options.sigma_prior_scale for k in sampled_scales(options)}

    def loss(model, coefficients, x, y):
        return -_log_likelihood(model, x, y, operator, {**known_coefficients(options), **coefficients},
                                options, fixed=fixed) / x.shape[0]

    return loss


def residual_scales(model, coefficients: dict, x, y, options) -> dict:
    """{sigma_f, sigma_u: the root mean square residual of each term} for the sampled sds:
    where their chains start after pretraining."""
    import jax.numpy as jnp

    operator = operator_of(options.operator, "likelihood.operator")
    r = predicted_terms(model, x, y, operator, {**known_coefficients(options), **coefficients})
    r = r - y[:, 0]
    scales = {}
    for key, rows in (("sigma_f", y[:, 1] == FORCING), ("sigma_u", y[:, 1] != FORCING)):
        if key in sampled_scales(options) and bool(jnp.any(rows)):
            scales[key] = float(jnp.sqrt(jnp.sum(jnp.where(rows, r**2, 0)) / jnp.sum(rows)))
    return scales


def _check_physics(options: PhysicsOptions, cfg) -> None:
    if cfg.data.name != "pde":
        raise ConfigError(f"likelihood 'physics' needs data=pde (its rows are sensors of f and "
                          f"of u), got data '{cfg.data.name}'")
    require(options.reduction == "sum", "likelihood.reduction", options.reduction,
            "sum (the physics likelihood is a proper Gaussian one)")
    for key in SCALES:
        value = getattr(options, key)
        if value != "sampled":
            require(not isinstance(value, (bool, str)), f"likelihood.{key}", value,
                    "a number > 0 or sampled")
            positive_float(f"likelihood.{key}", value)
    positive_float("likelihood.sigma_prior_scale", options.sigma_prior_scale)
    if sampled_scales(options) and cfg.sampler.temperature != 1:
        raise ConfigError(f"a sampled likelihood sd needs sampler.temperature=1, got "
                          f"{cfg.sampler.temperature}")
    operator = operator_of(options.operator, "likelihood.operator")
    if not isinstance(options.coefficients, dict):
        raise ConfigError(f"`likelihood.coefficients` must map names to numbers, got "
                          f"{options.coefficients!r}")
    if not isinstance(options.unknown, dict):
        raise ConfigError(f"`likelihood.unknown` must map names to {{mean, sd}}, got "
                          f"{options.unknown!r}")
    for name, prior in options.unknown.items():
        if str(name).startswith("log_sigma"):
            raise ConfigError(f"likelihood.unknown.{name}: the names log_sigma* are the "
                              f"sampled sds'; set likelihood.sigma_f=sampled instead")
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

    sampled = options.sigma_u == "sampled"  # then the predictive's sd is each draw's
    return Likelihood(log_likelihood, None if sampled else float(options.sigma_u))
