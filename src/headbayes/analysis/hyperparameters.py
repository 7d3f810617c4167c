"""The noise scale σ (`likelihood.sigma`) and the prior scale s (`prior.sigma`): set or learned.

Each takes a number or `evidence` (type-II maximum likelihood); `likelihood.sigma` also takes
`validation`. With the body fixed, a sampled linear head makes the model linear in its sampled
numbers θ: y = Jθ + offset + ε with θ ~ N(0, s² I), ε ~ N(0, σ² I) (J, offset:
`headbayes.analysis.exact`). The log evidence is then exact,

  log p(y | σ, s) = log N(y − offset; 0, σ² I + s² J Jᵀ),

and is maximised over the learned ones by MacKay's fixed point (as scikit-learn's BayesianRidge
does), with α = 1/s², β = 1/σ², λᵢ the eigenvalues of JᵀJ and m the posterior mean:
  γ = Σ βλᵢ / (βλᵢ + α),   α ← γ / ‖m‖²,   β ← (n − γ) / ‖y − offset − Jm‖².
Each iteration costs O(p) after one eigendecomposition. For any other mask J and the offset
come from the network linearised in its sampled leaves at the run's parameters
(`headbayes.analysis.linearised`): the Gauss-Newton Laplace evidence.

A body trained on the same rows fits them better than new ones (its training residuals
understate the noise), so `likelihood.sigma=validation` picks σ on rows the body never saw: the
σ that maximises the predictive density of the validation part (`data.val_fraction`) under the
posterior of the training rows, the prior scale at its evidence maximum for each σ.

Both need the untempered likelihood (`reduction: sum`) and a fixed body (frozen, or pretrained
with `body.weight_decay`). The values are found once before sampling, written to the run
directory's hyperparameters.json and used by the sampler, the report and `predict`; they are in
the units the model sees (standardised where the data are).
"""

import dataclasses
import math

import numpy as np

from headbayes.analysis.evidence import maximize_evidence, maximize_validation
from headbayes.analysis.exact import design, not_applicable_reason
from headbayes.analysis.linearised import linearised_design
from headbayes.core.checks import SCALE_RANGE, is_learned
from headbayes.core.errors import ConfigError, RunDirError, SamplingError
from headbayes.models.bodies import body_entry, modes_without
from headbayes.posterior.priors import is_plain_config

__all__ = ["learn", "with_values", "values_of", "checked_values", "check_learnable"]


def check_learnable(cfg) -> None:
    """ConfigError unless the scales marked `evidence` can be learned for this run."""
    learned = {k: v for k, v in (("likelihood.sigma", getattr(cfg.likelihood, "sigma", None)),
                                 ("prior.sigma", cfg.prior.sigma)) if is_learned(v)}
    if not learned:
        return
    if not hasattr(cfg.likelihood, "sigma"):
        raise ConfigError(f"`prior.sigma={cfg.prior.sigma}` needs the Gaussian likelihood, got "
                          f"likelihood '{cfg.likelihood.name}'; set a number")
    if learned.get("prior.sigma") == "validation":
        raise ConfigError("`prior.sigma` must be a number > 0 or evidence, got 'validation'")
    what = " and ".join(f"`{k}={v}`" for k, v in learned.items())

    prior = cfg.prior
    if not is_plain_config(cfg):
        raise ConfigError(f"{what} learns the scales under the plain prior (prior=gaussian, "
                          f"prior.scale=fixed, prior.center=zero, no group priors); got "
                          f"prior={prior.family}, prior.scale={prior.scale}, "
                          f"prior.center={prior.center}; set numbers")
    if cfg.likelihood.reduction != "sum":
        raise ConfigError(f"{what} needs `likelihood.reduction=sum` (the evidence of the "
                          f"untempered likelihood), got {cfg.likelihood.reduction!r}")
    if "map" in body_entry(cfg).caps and cfg.body.weight_decay is None:
        raise ConfigError(f"{what} with body.mode={cfg.body.mode} needs `body.weight_decay` (a "
                          f"number >= 0): the body's training cannot use a scale learned after it")
    if "moves" in body_entry(cfg).caps:
        raise ConfigError(f"{what} needs a fixed body (body.mode "
                          f"{' or '.join(modes_without('moves'))}), got body.mode={cfg.body.mode}")


def learn(cfg, params: dict, sampled: list, data) -> dict:
    """The values the run uses ({"likelihood_sigma", "prior_sigma"}, plus "log_evidence" and
    "iterations" when some were learned); `params` the fixed body and head, {path: array}.
    A `sampled` σ is learned by evidence too: the chains start there. A likelihood without a
    noise scale gives {"prior_sigma"} only."""
    if not hasattr(cfg.likelihood, "sigma"):
        return {"prior_sigma": float(cfg.prior.sigma)}
    fixed = {k: None if is_learned(v) else float(v)
             for k, v in (("sigma", cfg.likelihood.sigma), ("prior_sigma", cfg.prior.sigma))}
    if fixed["sigma"] is not None and fixed["prior_sigma"] is not None:
        return {"likelihood_sigma": fixed["sigma"], "prior_sigma": fixed["prior_sigma"]}

    linear_head = not_applicable_reason(cfg, sampled) is None
    make_design = design if linear_head else linearised_design  # beyond a head: linearise
    jac, offset = make_design(cfg, params, sampled, data.x_train)
    y = np.asarray(data.y_train, np.float64).reshape(-1) - offset
    if cfg.likelihood.sigma == "validation":
        if data.x_val is None:
            raise ConfigError("`likelihood.sigma=validation` needs a validation part: set "
                              "data.val_fraction > 0")
        jac_val, offset_val = make_design(cfg, params, sampled, data.x_val)
        y_val = np.asarray(data.y_val, np.float64).reshape(-1) - offset_val
        found = maximize_validation(jac.T @ jac, jac.T @ y, float(y @ y), y.size, jac_val,
                                    y_val, fixed["prior_sigma"])
    else:
        found = maximize_evidence(jac.T @ jac, jac.T @ y, float(y @ y), y.size, **fixed)
    low, high = SCALE_RANGE
    if not all(math.isfinite(found[k]) and low <= found[k] <= high
               for k in ("likelihood_sigma", "prior_sigma")):
        shown = ", ".join(f"{k} {v:.3g}" for k, v in found.items() if isinstance(v, float))
        raise SamplingError(f"learning the scales failed: found {shown}, outside "
                            f"[{low:g}, {high:g}] (too few or too regular training rows, "
                            f"{y.size} here); set likelihood.sigma and prior.sigma to numbers")
    return found


def with_values(cfg, values: dict):
    """`cfg` with the numbers of `values` (from `learn`) in place of learned scales; a
    `sampled` σ stays so (its value in `values` is where the chains start)."""
    likelihood = cfg.likelihood
    if getattr(likelihood, "sigma", "sampled") != "sampled":
        likelihood = dataclasses.replace(likelihood, sigma=values["likelihood_sigma"])
    return dataclasses.replace(cfg, likelihood=likelihood,
                               prior=dataclasses.replace(cfg.prior, sigma=values["prior_sigma"]))


def checked_values(values, path) -> dict:
    """`values` read from `path` (hyperparameters.json), or RunDirError unless both scales are
    finite numbers > 0."""

    def scale(value) -> bool:
        if isinstance(value, int) and not isinstance(value, bool):
            return 0 < value <= 10**30  # a 4000-digit integer would overflow float()
        return isinstance(value, float) and math.isfinite(value) and value > 0

    ok = (isinstance(values, dict) and scale(values.get("prior_sigma"))
          and ("likelihood_sigma" not in values or scale(values["likelihood_sigma"])))
    if not ok:
        raise RunDirError(f"corrupt file {path}: likelihood_sigma (when present) and "
                          f"prior_sigma must be numbers > 0")
    return values


def values_of(cfg) -> dict:
    """{"likelihood_sigma", "prior_sigma"} of a config whose scales are numbers."""
    return {"likelihood_sigma": float(cfg.likelihood.sigma),
            "prior_sigma": float(cfg.prior.sigma)}
