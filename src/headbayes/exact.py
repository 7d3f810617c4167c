"""Closed-form posterior of a sampled linear head (float64).

It applies when the likelihood is conjugate with a linear head (capability `linear_gaussian`),
the model's last stage is an `equinox.nn.Linear` (see `headbayes.models`) and only its leaves
are sampled. With the body frozen, f(x) = W φ(x) + b is linear in the sampled numbers θ:
f = J θ + offset, where J holds the features φ (for weights) and ones (for biases) and
`offset` is the frozen part. With the Gaussian likelihood and prior of DESIGN.md §3 the
(tempered) posterior is Gaussian: with a = 2 / (n · out) for `reduction: mean` and a = 1 for `sum`,
  precision Λ = a JᵀJ / σ² + I / σ_prior²,   mean μ = Λ⁻¹ a Jᵀ(y − offset) / σ²,
  covariance Σ = T Λ⁻¹ (T = sampler.temperature).
The predictive on the eval grid is Gaussian with mean J μ + offset, variance diag(J Σ Jᵀ);
its 5%–95% band is 2 · 1.6449 standard deviations wide.
"""

import functools
import threading
from typing import NamedTuple

import numpy as np

from headbayes.config import RunConfig
from headbayes.metrics import Z_95  # the 90% band's half width in standard deviations

__all__ = ["ExactPosterior", "exact_posterior", "not_applicable_reason", "chain_distance",
           "warm_up", "Z_95", "design", "sampled_paths"]


class ExactPosterior(NamedTuple):
    paths: list  # sampled leaves, in the order their numbers are concatenated
    mean: np.ndarray  # (p,)
    cov: np.ndarray  # (p, p)
    f_mean: np.ndarray  # (m, out) on the eval grid
    f_sd: np.ndarray  # (m, out)


def _head(cfg: RunConfig) -> str | None:
    from headbayes.models import linear_head, model_structure

    return linear_head(model_structure(cfg))


def sampled_paths(cfg: RunConfig) -> list[str]:
    """The leaves the mask of `cfg` samples, from the model's structure (nothing computed)."""
    from headbayes.mask import select
    from headbayes.models import leaf_shapes

    chosen = select(list(leaf_shapes(cfg)), cfg.mask.include, cfg.mask.exclude)
    return [path for path, sampled in chosen.items() if sampled]


def not_applicable_reason(cfg: RunConfig, sampled: list[str]) -> str | None:
    """Why there is no closed form for this likelihood, model and mask, or None if there is."""
    from headbayes.likelihoods import LIKELIHOODS

    if "linear_gaussian" not in LIKELIHOODS[cfg.likelihood.name].caps:
        return (f"no exact reference: the likelihood '{cfg.likelihood.name}' is not conjugate "
                f"with a linear head")
    head = _head(cfg)
    if head is None:
        return "no exact reference: the model's last stage is not a linear layer"
    outside = [p for p in sampled if not p.startswith(head + ".")]
    if outside:
        return (f"no exact reference: sampled leaves outside {head} ({', '.join(outside)}) "
                f"make the posterior non-Gaussian")
    return None


_PHI_LOCK = threading.Lock()  # a warm-up compiling φ finishes before the report calls it


@functools.cache
def _phi_program():
    """The jitted φ(x) (kept, so a second report does not compile it again)."""
    import equinox as eqx

    from headbayes.models import features

    return eqx.filter_jit(lambda model, x, stop: features(model, x, stop))


def _features(cfg: RunConfig, params: dict, x: np.ndarray) -> np.ndarray:
    """φ(x): the output of every stage before the head, in float64."""
    import jax

    from headbayes.predictive import model_with

    with jax.enable_x64(True), _PHI_LOCK:  # x64 is thread-local in JAX
        model = model_with(cfg, params, np.float64)
        return np.asarray(_phi_program()(model, np.asarray(x, np.float64),
                                         len(model.stages) - 1))


def warm_up(cfg: RunConfig, shapes: dict, sampled: list, data) -> None:
    """Compile the φ program `exact_posterior` runs on this data, on zero parameters, when the
    exact reference applies (nothing otherwise)."""
    if not_applicable_reason(cfg, sampled) is None:
        params = {p: np.zeros(s, np.float32) for p, s in shapes.items()}
        _features(cfg, params, np.concatenate([data.x_train, data.x_eval]))


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


def exact_posterior(cfg: RunConfig, params: dict, sampled: list[str], data) -> ExactPosterior:
    """The Gaussian posterior of the sampled head numbers (see the module docstring); `cfg`'s
    scales are numbers (learned ones already put in, `headbayes.hyperparameters`)."""
    head = _head(cfg)
    params64 = {k: np.asarray(v, np.float64) for k, v in params.items()}
    n = len(data.x_train)
    phi_all = _features(cfg, params, np.concatenate([data.x_train, data.x_eval]))  # one program
    phi, phi_eval = phi_all[:n], phi_all[n:]
    jac, offset, order = _design(phi, params64, sampled, head)
    y = np.asarray(data.y_train, np.float64).reshape(-1)
    a = 2.0 / y.size if cfg.likelihood.reduction == "mean" else 1.0
    s2 = float(cfg.likelihood.sigma) ** 2
    precision = a * jac.T @ jac / s2 + np.eye(jac.shape[1]) / float(cfg.prior.sigma) ** 2
    mean = np.linalg.solve(precision, a * jac.T @ (y - offset) / s2)
    cov = cfg.sampler.temperature * np.linalg.inv(precision)
    jac_eval, offset_eval, _ = _design(phi_eval, params64, sampled, head)
    out = params64[f"{head}.bias"].shape[0]
    f_mean = (jac_eval @ mean + offset_eval).reshape(-1, out)
    f_var = np.einsum("ij,jk,ik->i", jac_eval, cov, jac_eval).reshape(-1, out)
    return ExactPosterior(order, mean, cov, f_mean, np.sqrt(np.maximum(f_var, 0)))


def chain_distance(exact: ExactPosterior, chain: dict) -> dict:
    """How far the chain's mean and variance are from the exact ones, per sampled number."""
    draws = np.concatenate([chain[p].reshape(chain[p].shape[:2] + (-1,)) for p in exact.paths],
                           axis=2).astype(np.float64)
    pooled = draws.reshape(-1, draws.shape[2])
    sd = np.sqrt(np.diag(exact.cov))
    ratio = pooled.var(axis=0, ddof=1) / np.diag(exact.cov)
    return {"mean_z_max": float(np.max(np.abs(pooled.mean(axis=0) - exact.mean) / sd)),
            "var_ratio_min": float(np.min(ratio)), "var_ratio_max": float(np.max(ratio))}
