"""Closed-form posterior of a sampled linear head (float64).

It applies when the likelihood is conjugate with a linear head (capability `linear_gaussian`),
the model's last stage is an `equinox.nn.Linear` (see `headbayes.models`) and only its leaves
are sampled. With the body frozen, f(x) = W φ(x) + b is linear in the sampled numbers θ:
f = J θ + offset, where J holds the features φ (for weights) and ones (for biases) and
`offset` is the frozen part. With the Gaussian likelihood and prior of docs/config.md (Numerical
conventions) the (tempered) posterior is Gaussian: with a = 2 / (n · out) for `reduction: mean` and
a = 1 for `sum`,
  precision Λ = a JᵀJ / σ² + diag(1 / s²),   mean μ = Λ⁻¹ (a Jᵀ(y − offset) / σ² + c / s²),
  covariance Σ = T Λ⁻¹ (T = sampler.temperature),
with s and c each sampled number's prior sd and centre (`headbayes.posterior.priors`: σ_prior, or
σ_prior/√fan-in, or a group's own; 0 or the initial value). A prior of another family has no
closed form: then there is no exact reference.
A physics likelihood with a linear operator (`headbayes.posterior.physics`) is linear in θ as
well, each row with its own noise sd: `_physics_posterior`.
The predictive on the eval grid is Gaussian with mean J μ + offset, variance diag(J Σ Jᵀ);
its 5%–95% band is 2 · 1.6449 standard deviations wide.

With σ sampled (`likelihood.sigma=sampled`, `reduction: sum`, T = 1; headbayes.posterior.noise) the
posterior is the mixture over σ of these Gaussians, weighted by p(σ | y) ∝ p(σ) p(y | σ, s);
`noise_mixture` evaluates it by quadrature on `GRID` points uniform in u = log σ (the evidence
p(y | σ, s) in closed form, headbayes.analysis.hyperparameters), spanning ± 10 posterior sds of u
around its evidence maximum; mean and covariance are the mixture's, and the reported band uses
the mixture's function sd.
"""

import functools
from typing import NamedTuple

import numpy as np

from headbayes.analysis.evidence import eigenbasis, fixed_point, log_evidence
from headbayes.core.normal import Z_95
from headbayes.core.schema import RunConfig
from headbayes.models import (features, leaf_shapes, linear_head, model_structure, sampled_paths,
                              stages_of)
from headbayes.models.skeleton import model_with
from headbayes.posterior.likelihoods import LIKELIHOODS
from headbayes.models.mask import node_at
from headbayes.posterior.noise import log_noise_prior
from headbayes.posterior.operators import FORCING, operator_of
from headbayes.posterior.physics import (is_physics, predicted_terms, sampled_scales,
                                         unknown_names)
from headbayes.posterior.priors import is_gaussian, is_plain, leaf_priors, prior_arrays

__all__ = ["ExactPosterior", "exact_posterior", "not_applicable_reason", "chain_distance",
           "conditional_sd_ratio", "Z_95", "design", "sampled_paths", "NoiseMixture",
           "noise_mixture", "GRID"]

GRID = 401  # quadrature points over log σ when σ is sampled


class ExactPosterior(NamedTuple):
    paths: list  # sampled leaves, in the order their numbers are concatenated
    mean: np.ndarray  # (p,)
    cov: np.ndarray  # (p, p)
    f_mean: np.ndarray  # (m, out) on the eval grid
    f_sd: np.ndarray  # (m, out)


def _head(cfg: RunConfig) -> str | None:
    return linear_head(model_structure(cfg))


def not_applicable_reason(cfg: RunConfig, sampled: list[str]) -> str | None:
    """Why there is no closed form for this likelihood, model and mask, or None if there is."""
    if is_physics(cfg.likelihood):
        if not operator_of(cfg.likelihood.operator, "likelihood.operator").linear:
            return (f"no exact reference: the operator '{cfg.likelihood.operator}' is not "
                    f"linear")
        if unknown_names(cfg.likelihood):
            return "no exact reference: the operator's coefficients are sampled"
        if sampled_scales(cfg.likelihood):
            return "no exact reference: the noise sds are sampled"
    elif "linear_gaussian" not in LIKELIHOODS[cfg.likelihood.name].caps:
        return (f"no exact reference: the likelihood '{cfg.likelihood.name}' is not conjugate "
                f"with a linear head")
    head = _head(cfg)
    if head is None and not stages_of(model_structure(cfg)):
        return ("no exact reference: the model does not say which layer is last; give its "
                "class `stages` (leaf-path prefixes in forward order) and `run_stages(h, "
                "start, stop)`, as docs/own-model.md shows")
    if head is None:
        return "no exact reference: the model's last stage is not a linear layer with a bias"
    outside = [p for p in sampled if not p.startswith(head + ".")]
    if outside:
        return (f"no exact reference: sampled leaves outside {head} ({', '.join(outside)}) "
                f"make the posterior non-Gaussian")
    leaves = _leaf_priors(cfg, sampled)
    families = sorted({p.options.family for p in leaves.values() if not is_gaussian(p.options)})
    if families:
        return f"no exact reference: the prior is {' and '.join(families)}, not Gaussian"
    if getattr(cfg.likelihood, "sigma", None) == "sampled" and not is_plain(leaves):
        return ("no exact reference: with likelihood.sigma=sampled it needs the plain prior "
                "(Gaussian, prior.scale=fixed, prior.center=zero, no group priors)")
    return None


def _leaf_priors(cfg: RunConfig, sampled: list[str]) -> dict:
    return leaf_priors(cfg, leaf_shapes(cfg), sampled)


@functools.cache
def _phi_program():
    """The jitted φ(x) (kept, so a second report does not compile it again)."""
    import equinox as eqx

    return eqx.filter_jit(lambda model, x, stop: features(model, x, stop))


def _features(cfg: RunConfig, params: dict, x: np.ndarray) -> np.ndarray:
    """φ(x): the output of every stage before the head, in float64."""
    import jax

    with jax.enable_x64(True):
        model = model_with(cfg, params, np.float64)
        return np.asarray(_phi_program()(model, np.asarray(x, np.float64),
                                         len(stages_of(model)) - 1))


def _design(phi: np.ndarray, params: dict, sampled: list[str], head: str):
    """(J, offset) with rows (point, output) flattened point-major."""
    n, width = phi.shape
    weight = np.asarray(params[f"{head}.weight"], np.float64)
    bias = np.asarray(params[f"{head}.bias"], np.float64)
    out = bias.shape[0]
    eye = np.eye(out)
    blocks = []
    offset = np.zeros((n, out))
    if f"{head}.weight" in sampled:  # d f[i, o] / d W[o', j] = δ(o, o') φ[i, j]
        blocks.append(np.einsum("ij,ok->iokj", phi, eye).reshape(n * out, out * width))
    else:
        offset += phi @ weight.T
    if f"{head}.bias" in sampled:
        blocks.append(np.tile(eye, (n, 1)))
    else:
        offset += bias
    order = [p for p in (f"{head}.weight", f"{head}.bias") if p in sampled]
    return np.concatenate(blocks, axis=1), offset.reshape(-1), order


def design(cfg: RunConfig, params: dict, sampled: list[str], x: np.ndarray):
    """(J, offset) of the head at the inputs `x`, float64: f(x) = J θ + offset, rows
    (point, output) flattened point-major, θ the sampled head numbers in `_design`'s order."""
    params64 = {k: np.asarray(v, np.float64) for k, v in params.items()}
    jac, offset, _ = _design(_features(cfg, params, x), params64, sampled, _head(cfg))
    return jac, offset


class NoiseMixture(NamedTuple):
    """The posterior with σ sampled, on a grid of u = log σ: p(θ | σ_k) = N(means[k],
    vectors diag(variances[k]) vectorsᵀ), weights[k] = p(u_k | y) · spacing."""

    log_sigma: np.ndarray  # (K,)
    weights: np.ndarray  # (K,), summing to 1
    means: np.ndarray  # (K, p)
    variances: np.ndarray  # (K, p), in the eigenbasis `vectors`
    vectors: np.ndarray  # (p, p)


def noise_mixture(cfg: RunConfig, jac: np.ndarray, y: np.ndarray) -> NoiseMixture:
    """The grid of the module docstring for the design `jac` and targets `y` (offset removed)."""
    s = float(cfg.prior.sigma)
    yy, n = float(y @ y), y.size
    lam, c, vectors = eigenbasis(jac.T @ jac, jac.T @ y)
    centre = np.log(fixed_point(lam, c, yy, n, prior_sigma=s)["likelihood_sigma"])
    half = min(3.0, 10 / np.sqrt(2 * n))
    u = np.linspace(centre - half, centre + half, GRID)
    prior = log_noise_prior(cfg.likelihood)
    log_w = np.array([log_evidence(lam, c, yy, n, 1 / s**2, np.exp(-2 * k)) + float(prior(k))
                      for k in u])
    weights = np.exp(log_w - log_w.max())
    beta = np.exp(-2 * u)[:, None]
    variances = 1 / (beta * lam + 1 / s**2)  # (K, p)
    means = (beta * c * variances) @ vectors.T  # (K, p)
    return NoiseMixture(u, weights / weights.sum(), means, variances, vectors)


def _mixture_moments(mixture: NoiseMixture, jac_eval: np.ndarray):
    """(mean, cov, f_mean without offset, f_var) of the mixture, `jac_eval` at the eval points."""
    w, v = mixture.weights, mixture.vectors
    mean = w @ mixture.means
    coeff = mixture.means @ v  # (K, p) in the eigenbasis
    second = v @ np.diag(w @ mixture.variances) @ v.T + (mixture.means.T * w) @ mixture.means
    cov = second - np.outer(mean, mean)
    projected = jac_eval @ v  # (m, p)
    f_given = coeff @ projected.T  # (K, m): E[f | σ_k]
    f_mean = w @ f_given
    f_var = (projected**2 @ (w @ mixture.variances)) + w @ f_given**2 - f_mean**2
    return mean, cov, f_mean, f_var


def exact_posterior(cfg: RunConfig, params: dict, sampled: list[str], data) -> ExactPosterior:
    """The Gaussian posterior of the sampled head numbers (see the module docstring); `cfg`'s
    scales are numbers (learned ones already put in, `headbayes.analysis.hyperparameters`), or σ is
    `sampled` (the mixture over σ, `noise_mixture`)."""
    head = _head(cfg)
    params64 = {k: np.asarray(v, np.float64) for k, v in params.items()}
    if is_physics(cfg.likelihood):
        return _physics_posterior(cfg, params, params64, sampled, data, head)
    n = len(data.x_train)
    phi_all = _features(cfg, params, np.concatenate([data.x_train, data.x_eval]))  # one program
    phi, phi_eval = phi_all[:n], phi_all[n:]
    jac, offset, order = _design(phi, params64, sampled, head)
    jac_eval, offset_eval, _ = _design(phi_eval, params64, sampled, head)
    out = params64[f"{head}.bias"].shape[0]
    y = np.asarray(data.y_train, np.float64).reshape(-1)
    if cfg.likelihood.sigma == "sampled":
        mean, cov, f_mean, f_var = _mixture_moments(noise_mixture(cfg, jac, y - offset),
                                                    jac_eval)
        return ExactPosterior(order, mean, cov, (f_mean + offset_eval).reshape(-1, out),
                              np.sqrt(np.maximum(f_var, 0)).reshape(-1, out))
    a = 2.0 / y.size if cfg.likelihood.reduction == "mean" else 1.0
    s2 = float(cfg.likelihood.sigma) ** 2
    centre, sd = prior_arrays(_leaf_priors(cfg, order), params, float(cfg.prior.sigma))
    precision = a * jac.T @ jac / s2 + np.diag(1 / sd**2)
    mean = np.linalg.solve(precision, a * jac.T @ (y - offset) / s2 + centre / sd**2)
    cov = cfg.sampler.temperature * np.linalg.inv(precision)
    f_mean = (jac_eval @ mean + offset_eval).reshape(-1, out)
    f_var = np.einsum("ij,jk,ik->i", jac_eval, cov, jac_eval).reshape(-1, out)
    return ExactPosterior(order, mean, cov, f_mean, np.sqrt(np.maximum(f_var, 0)))


def _physics_design(cfg: RunConfig, params: dict, order: list[str], x, y):
    """(J, offset) of a physics likelihood's predicted terms (`predicted_terms`: L[u] at the
    forcing sensors, u at its values) in the head numbers θ (`order`), float64: exact for a
    linear operator, where they are affine in θ."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    operator = operator_of(cfg.likelihood.operator, "likelihood.operator")
    shapes = [np.shape(params[p]) for p in order]
    with jax.enable_x64(True):
        model = model_with(cfg, params, np.float64)
        coefficients = {k: jnp.float64(v) for k, v in cfg.likelihood.coefficients.items()}
        x, y = jnp.asarray(x, jnp.float64), jnp.asarray(y, jnp.float64)

        def terms(theta):
            m, start = model, 0
            for path, shape in zip(order, shapes):
                size = int(np.prod(shape))
                parent, _, leaf = path.rpartition(".")
                m = eqx.tree_at(lambda t: getattr(node_at(t, parent), leaf), m,
                                theta[start:start + size].reshape(shape))
                start += size
            return predicted_terms(m, x, y, operator, coefficients)

        theta0 = jnp.concatenate([jnp.asarray(params[p], jnp.float64).reshape(-1)
                                  for p in order])
        jac, value = jax.jit(lambda t: (jax.jacfwd(terms)(t), terms(t)))(theta0)
        jac = np.asarray(jac, np.float64)
        return jac, np.asarray(value, np.float64) - jac @ np.asarray(theta0)


def _physics_posterior(cfg, params, params64, sampled, data, head) -> ExactPosterior:
    """The Gaussian posterior of a linear head under a physics likelihood with a linear
    operator: precision JᵀWJ + diag(1/s²), W = diag(1/sd²) of each row's term."""
    order = [p for p in (f"{head}.weight", f"{head}.bias") if p in sampled]
    jac, offset = _physics_design(cfg, params, order, data.x_train, data.y_train)
    y = np.asarray(data.y_train, np.float64)
    options = cfg.likelihood
    sd = np.where(y[:, 1] == FORCING, float(options.sigma_f), float(options.sigma_u))
    weighted = jac / sd[:, None] ** 2
    centre, prior_sd = prior_arrays(_leaf_priors(cfg, order), params, float(cfg.prior.sigma))
    precision = weighted.T @ jac + np.diag(1 / prior_sd**2)
    mean = np.linalg.solve(precision, weighted.T @ (y[:, 0] - offset) + centre / prior_sd**2)
    cov = cfg.sampler.temperature * np.linalg.inv(precision)
    jac_eval, offset_eval, _ = _design(_features(cfg, params, data.x_eval), params64, sampled,
                                       head)
    out = params64[f"{head}.bias"].shape[0]
    f_mean = (jac_eval @ mean + offset_eval).reshape(-1, out)
    f_var = np.einsum("ij,jk,ik->i", jac_eval, cov, jac_eval).reshape(-1, out)
    return ExactPosterior(order, mean, cov, f_mean, np.sqrt(np.maximum(f_var, 0)))


def chain_distance(exact: ExactPosterior, chain: dict) -> dict:
    """How far the chain's mean and variance are from the exact ones, per sampled number."""
    draws = np.concatenate([chain[p].reshape(chain[p].shape[:2] + (-1,)) for p in exact.paths],
                           axis=2).astype(np.float64)
    pooled = draws.reshape(-1, draws.shape[2])
    variance = np.diag(exact.cov)
    spread = variance > 0  # at temperature 0 the exact posterior is a point: NaN, not inf
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(spread, np.abs(pooled.mean(axis=0) - exact.mean) / np.sqrt(variance),
                     np.nan)
        ratio = (np.where(spread, pooled.var(axis=0, ddof=1) / variance, np.nan)
                 if len(pooled) > 1 else np.full(len(variance), np.nan))  # one draw: no variance
    return {"mean_z_max": float(np.max(z)), "var_ratio_min": float(np.min(ratio)),
            "var_ratio_max": float(np.max(ratio))}


def conditional_sd_ratio(exact: ExactPosterior, sizes: dict, members) -> float:
    """min over the numbers of the leaves `members` of their conditional sd given every other
    sampled number over their marginal sd, in the exact posterior: how far one Gibbs sweep
    can move that block (1: independent of the rest; near 0: the sweep barely moves it).
    `sizes` maps each of `exact.paths` to its number count."""
    inside = np.concatenate([np.full(sizes[p], p in members) for p in exact.paths])
    precision = np.linalg.inv(exact.cov)
    conditional = np.diag(np.linalg.inv(precision[np.ix_(inside, inside)]))
    return float(np.sqrt(np.min(conditional / np.diag(exact.cov)[inside])))
