"""The metric registry: every figure of metrics.json, with the keys it writes and when it applies.

A metric is a function of a `ReportContext` (the run's config, data, parameters, chain, and
the predictive draws, computed once and shared) that returns {key: value}, or None when it does
not apply to this run (no truth, no test split, no exact reference). `METRIC_KEYS` (the order
of metrics.json, the report table and summary.csv) is derived from the registry, so a new
metric is one function here.
"""

import math
from functools import cached_property
from typing import Callable, NamedTuple

import numpy as np

from headbayes.analysis import exact
from headbayes.core.errors import RunDirError
from headbayes.datasets import report_parts, report_points
from headbayes.engine.predictive import function_draws
from headbayes.models.bodies import body_entry
from headbayes.posterior.physics import coefficient_draws, is_physics
from headbayes.posterior.position import model_draws, noise_draws
from headbayes.posterior.likelihoods import (is_classifier, make_likelihood, noise_predictive,
                                             output_split)
from headbayes.report import classify, diagnostics, metrics
from headbayes.report.physics import pde_residuals
from headbayes.samplers import SAMPLERS
from headbayes.samplers.gibbs import group_paths

__all__ = ["ReportContext", "METRICS", "METRIC_KEYS", "metric", "compute_figures", "json_figures",
           "checked_figures", "flat_figures"]


class Metric(NamedTuple):
    keys: tuple
    compute: Callable


METRICS: list[Metric] = []


def metric(*keys: str) -> Callable:
    """Decorator: register `compute(ctx) -> {key: value} | None` as the metric writing `keys`."""
    def add(compute: Callable) -> Callable:
        METRICS.append(Metric(keys, compute))
        return compute

    return add


class ReportContext:
    """What metrics and plots read; the costly parts (predictive draws, the exact posterior)
    are computed on first use and shared."""

    def __init__(self, cfg, data, params: dict, chain: dict, info: dict,
                 initial_params: dict | None = None, frozen_end: dict | None = None):
        self.cfg, self.data, self.params, self.chain, self.info = cfg, data, params, chain, info
        self.initial_params, self.frozen_end = initial_params, frozen_end
        self.notes: list[str] = []

    @cached_property
    def part_draws(self) -> dict:
        """Function draws (chain, draw, n, out) on each part of `report_parts`, in one pass."""
        parts = report_parts(self.data)
        f = function_draws(self.cfg, self.params, self.model_chain, report_points(self.data))
        ends = np.cumsum([len(x) for x in parts.values()])
        return {name: f[:, :, end - len(x):end] for (name, x), end in zip(parts.items(), ends)}

    @cached_property
    def family(self) -> str:
        return self.cfg.likelihood.name

    @cached_property
    def classifier(self) -> bool:
        return is_classifier(self.cfg.likelihood)

    @cached_property
    def split(self):
        """The family's `split(outputs) -> (mean, noise sd)`, or None (likelihoods.output_split)."""
        return output_split(self.family)

    @cached_property
    def noise_predictive(self):
        """The family's `NoisePredictive` (its observation noise), None for a classifier."""
        return noise_predictive(self.family)

    def mean_draws(self, part: str) -> np.ndarray | None:
        """The function draws of a part: the network's output, or the mean part of it when
        the network predicts its noise."""
        f = self.part_draws.get(part)
        return f if f is None or self.split is None else self.split(f)[0]

    def noise_for(self, part: str):
        """The noise scale of the predictive on a part (model units): a number, one per draw
        (draws, 1) with σ sampled, or one per draw and point (draws, n) when the network
        predicts it."""
        if self.split is not None:
            scale = self.split(self.part_draws[part])[1]
            return scale.reshape((-1,) + scale.shape[2:])[..., 0]
        return self.noise_sd

    @cached_property
    def f_eval(self) -> np.ndarray:
        return self.mean_draws("eval")

    @cached_property
    def summary(self) -> dict:
        return metrics.predictive_summary(self.f_eval, self.data.f_eval)

    @cached_property
    def eval_mean_sd(self) -> tuple[np.ndarray, np.ndarray]:
        """The function draws' mean and sd (ddof 1) on the eval grid, (n, out) float64."""
        pooled = self.f_eval.reshape((-1,) + self.f_eval.shape[2:]).astype(np.float64)
        return pooled.mean(axis=0), pooled.std(axis=0, ddof=1)

    @cached_property
    def pde_residuals(self) -> np.ndarray:
        """A physics run's L[u] − f on the eval grid, (draws, n) for at most 200 draws."""
        return pde_residuals(self.cfg, self.params, self.model_chain, self.chain,
                             self.data.x_eval)

    @cached_property
    def f_test(self) -> np.ndarray | None:
        return self.mean_draws("test")

    @cached_property
    def y_scale(self) -> float:
        """The target's standardisation scale: original units = model units × y_scale."""
        scaling = self.data.scaling
        return 1.0 if scaling is None else float(np.asarray(scaling.y_scale).reshape(-1)[0])

    @cached_property
    def leaf_variances(self) -> dict:
        """unmasked_var_max (frozen leaves: params.npz against the loop's end values) and
        masked_var_min; shared by the metric and the verdict."""
        return metrics.leaf_variances(self.params, self.model_chain, self.frozen_end)

    @cached_property
    def model_chain(self) -> dict:
        """The chain's model leaves (without a sampled σ)."""
        return model_draws(self.chain)

    @cached_property
    def noise_sd(self):
        """The observation noise the likelihood's predictive adds (model units): a number, or
        with σ sampled one per draw, (draws, 1) pooled over chains."""

        sigma = noise_draws(self.chain)
        if sigma is not None:
            return sigma.reshape(-1, 1)
        return make_likelihood(self.cfg.likelihood).noise_sd

    @cached_property
    def noise_sd_mean(self) -> float | None:
        """The mean noise sd (None when the noise varies with the input, or for classifiers)."""
        return None if self.noise_sd is None else float(np.mean(self.noise_sd))

    @cached_property
    def heldout(self) -> tuple[dict, dict] | None:
        """(figures, calibration curve) on the test split, or None without one."""
        if self.f_test is None or self.classifier:
            return None
        return metrics.heldout(self.f_test, self.data.y_test, self.noise_for("test"),
                               self.noise_predictive)

    @cached_property
    def class_predictive(self) -> dict:
        """{part: (p̄, mean entropy of the draws)} of a classifier on test and ood points."""
        return {part: classify.predictive(self.part_draws[part], self.family)
                for part in ("test", "ood") if part in self.part_draws}

    @cached_property
    def map_test(self) -> np.ndarray:
        """The MAP network's outputs on the test points (computed once for metrics and plots)."""
        return map_outputs(self, self.data.x_test)

    @cached_property
    def map_predictive(self) -> tuple:
        """The MAP network's predictive on the test points: a classifier's class probabilities
        (n, classes) and None; else its mean (n, 1) and noise sd (the run's mean σ, or the
        network's own per point when it predicts its noise)."""
        if self.classifier:
            return classify.probabilities(self.map_test, self.family), None
        if self.split is None:
            return self.map_test, self.noise_sd_mean
        f_map, scale = self.split(self.map_test)
        return f_map, scale[:, 0]

    @cached_property
    def iid(self) -> bool:
        """The sampler's draws are independent (it fits, then draws): no R-hat to judge."""
        return "fitted" in SAMPLERS[self.cfg.sampler.name].caps

    @cached_property
    def checks(self) -> dict:
        """Convergence diagnostics, plus `all_finite` for the verdict."""
        numbers = np.concatenate([v.reshape(v.shape[:2] + (-1,)) for v in self.chain.values()],
                                 axis=2)
        info = self.info
        with np.errstate(invalid="ignore"):
            figures = {"rhat_max": _nanmax(diagnostics.rhat(numbers)),
                       "ess_bulk_min": _nanmin(diagnostics.ess_bulk(numbers)),
                       "ess_tail_min": _nanmin(diagnostics.ess_tail(numbers)),
                       "divergences": int(info["divergences"].sum()) if info else 0,
                       "accept_mean": (float(info["acceptance_sum"].sum() / info["steps"].sum())
                                       if info else None)}
        figures["all_finite"] = bool(np.isfinite(numbers).all())
        return figures

    @cached_property
    def exact(self):
        """The exact Gaussian posterior of a linear head, or None (the reason in `notes`)."""
        reason = exact.not_applicable_reason(self.cfg, list(self.model_chain))
        if reason is not None:
            self.notes.append(reason)
            return None
        return exact.exact_posterior(self.cfg, self.params, list(self.model_chain), self.data)


def _nanmax(values: np.ndarray) -> float:
    """Largest value; NaN if any value is NaN (a NaN must never pass a check)."""
    return float(np.nan if np.isnan(values).any() else values.max())


def _nanmin(values: np.ndarray) -> float:
    return float(np.nan if np.isnan(values).any() else values.min())


def _rel_l2(mean: np.ndarray, truth: np.ndarray) -> float:
    return float(np.linalg.norm(mean - truth) / np.linalg.norm(truth))


@metric("unmasked_var_max", "masked_var_min")
def _leaf_variances(ctx: ReportContext):
    return ctx.leaf_variances


@metric("rel_l2", "band_median", "band_max", "num_draws")
def _band(ctx: ReportContext):
    if ctx.classifier:  # a band of logits says nothing; the class figures below do
        return {"num_draws": int(ctx.f_eval.shape[0] * ctx.f_eval.shape[1])}
    return {**{k: ctx.summary[k] for k in ("rel_l2", "band_median", "band_max")},
            "num_draws": int(ctx.f_eval.shape[0] * ctx.f_eval.shape[1])}


@metric("truth_coverage_90")
def _truth_coverage(ctx: ReportContext):
    if ctx.data.f_eval is None:
        return None
    return {"truth_coverage_90": metrics.truth_coverage(ctx.summary, ctx.data.f_eval)}


@metric("truth_within_2sd", "pde_residual_rms", "coefficients")
def _physics(ctx: ReportContext):
    """A physics likelihood's figures: the fraction of eval points whose true u lies within
    the posterior mean ± 2 sd of the function draws; the root mean square over the eval points
    of the posterior mean of L[u] − f (`report.physics`); each sampled coefficient's posterior
    (mean, sd, 5% and 95% quantiles over all draws)."""
    if not is_physics(ctx.cfg.likelihood):
        return None
    mean, sd = ctx.eval_mean_sd
    figures = {"truth_within_2sd": float(np.mean(np.abs(ctx.data.f_eval - mean) <= 2 * sd)),
               "pde_residual_rms": float(np.sqrt(np.mean(ctx.pde_residuals.mean(axis=0)**2)))}
    draws = coefficient_draws(ctx.chain, ctx.cfg.likelihood)
    if draws:
        figures["coefficients"] = {
            name: {"mean": float(d.mean()), "sd": float(d.std(ddof=1)),
                   "q05": float(np.quantile(d, 0.05)), "q95": float(np.quantile(d, 0.95))}
            for name, d in draws.items()}
    return figures


@metric("band_gap_ratio")
def _gap(ctx: ReportContext):
    if ctx.data.gap is None:
        return None
    return {"band_gap_ratio": metrics.band_gap_ratio(ctx.summary, ctx.data.x_eval, ctx.data.gap)}


@metric("likelihood_sigma", "prior_sigma")
def _scales(ctx: ReportContext):
    """The scales the run sampled with (set or learned; a sampled σ: its posterior mean), in
    the units the model sees."""
    scales = {"prior_sigma": float(ctx.cfg.prior.sigma)}
    if hasattr(ctx.cfg.likelihood, "sigma"):
        scales = {"likelihood_sigma": ctx.noise_sd_mean, **scales}
    return scales


def _in_original_units(figures: dict, y_scale: float, prefix: str = "") -> dict:
    """RMSE and NLL of standardised `figures` in the target's original units."""
    return {f"{prefix}test_rmse": figures["test_rmse"] * y_scale,
            f"{prefix}test_nll": figures["test_nll"] + float(np.log(y_scale))}


@metric("test_rmse", "test_nll", "test_rmse_standardized", "test_nll_standardized",
        "test_coverage_90", *(f"coverage_{round(level * 100)}" for level in metrics.LEVELS))
def _heldout(ctx: ReportContext):
    """Held-out figures; RMSE and NLL in the target's original units, and standardised."""
    if ctx.heldout is None:
        return None
    figures = ctx.heldout[0]
    return {**_in_original_units(figures, ctx.y_scale),
            "test_rmse_standardized": figures["test_rmse"],
            "test_nll_standardized": figures["test_nll"],
            **{k: v for k, v in figures.items() if k not in ("test_rmse", "test_nll")}}


@metric("train_rmse")
def _train(ctx: ReportContext):
    """RMSE of the posterior mean on the training rows (original units), with a test split."""
    f_train = ctx.mean_draws("train")
    if f_train is None or ctx.classifier:
        return None
    return {"train_rmse": ctx.y_scale * metrics.mean_rmse(f_train, ctx.data.y_train)}


@metric("val_nll")
def _validation(ctx: ReportContext):
    """Predictive NLL on the validation part (original units)."""
    f_val = ctx.mean_draws("val")
    if f_val is None or ctx.classifier:
        return None
    figures, _ = metrics.heldout(f_val, ctx.data.y_val, ctx.noise_for("val"),
                                 ctx.noise_predictive)
    return {"val_nll": figures["test_nll"] + float(np.log(ctx.y_scale))}


@metric("map_test_rmse", "map_test_nll", "map_test_coverage_90")
def _map_heldout(ctx: ReportContext):
    """The same held-out figures (original units) for the MAP network alone
    (a body with capability `map`: params.npz holds the whole trained network), with the
    likelihood's noise: what the Bayesian part adds over it."""
    if "map" not in body_entry(ctx.cfg).caps or ctx.data.x_test is None or ctx.classifier:
        return None
    f_map, noise_sd = ctx.map_predictive
    figures = metrics.point_heldout(f_map, ctx.data.y_test, noise_sd, ctx.noise_predictive)
    return {**_in_original_units(figures, ctx.y_scale, "map_"),
            "map_test_coverage_90": figures["test_coverage_90"]}


def map_outputs(ctx: ReportContext, x: np.ndarray) -> np.ndarray:
    """The MAP network's outputs (n, out) at `x` (params.npz: the whole trained network)."""
    at_map = {p: ctx.params[p][None, None] for p in ctx.model_chain}
    return function_draws(ctx.cfg, ctx.params, at_map, x)[0, 0]


@metric("accuracy", "test_nll", "brier", "ece", "test_entropy", "test_mutual_information",
        "ood_entropy", "ood_mutual_information")
def _classes(ctx: ReportContext):
    """A classifier's held-out figures (`headbayes.report.classify`) and its entropy on the ood
    points, when the data have them."""

    if not ctx.classifier or "test" not in ctx.class_predictive:
        return None
    p_mean, draw_entropy = ctx.class_predictive["test"]
    figures = classify.class_figures(p_mean, ctx.data.y_test)
    result = {**{k: v for k, v in figures.items() if k != "entropy"},
              "test_entropy": figures["entropy"],
              "test_mutual_information": float(np.mean(classify.entropy(p_mean)
                                                       - draw_entropy))}
    if "ood" in ctx.class_predictive:
        p_ood, ood_draw_entropy = ctx.class_predictive["ood"]
        result["ood_entropy"] = float(np.mean(classify.entropy(p_ood)))
        result["ood_mutual_information"] = float(np.mean(classify.entropy(p_ood)
                                                         - ood_draw_entropy))
    return result


@metric("map_accuracy", "map_test_nll", "map_brier", "map_ece", "map_ood_entropy")
def _map_classes(ctx: ReportContext):
    """The same for the MAP network alone (a body with capability `map`)."""
    if not ctx.classifier or "map" not in body_entry(ctx.cfg).caps or ctx.data.x_test is None:
        return None
    p_map = ctx.map_predictive[0]
    figures = classify.class_figures(p_map, ctx.data.y_test)
    result = {f"map_{k}": figures[k] for k in ("accuracy", "test_nll", "brier", "ece")}
    if ctx.data.x_ood is not None:
        p_ood = classify.probabilities(map_outputs(ctx, ctx.data.x_ood), ctx.family)
        result["map_ood_entropy"] = float(np.mean(classify.entropy(p_ood)))
    return result


@metric("rhat_max", "ess_bulk_min", "ess_tail_min", "divergences", "accept_mean")
def _diagnostics(ctx: ReportContext):
    return {k: v for k, v in ctx.checks.items() if k != "all_finite"}


@metric("groups")
def _groups(ctx: ReportContext):
    """Per group of `mask.groups` (sampler=gibbs): its sampler, numbers, mean acceptance,
    divergences and gradient evaluations per sweep over the kept sweeps, its bulk ESS and,
    with an exact reference, `dependence`: `exact.conditional_sd_ratio` of the group."""

    if not ctx.cfg.mask.groups:
        return None
    result = {}
    members = group_paths(ctx.cfg)
    for name, group in ctx.cfg.mask.groups.items():
        paths = sorted(members[name])
        numbers = np.concatenate([ctx.chain[p].reshape(ctx.chain[p].shape[:2] + (-1,))
                                  for p in paths], axis=2)
        figures = {"sampler": group.sampler.name, "numbers": int(numbers.shape[2]),
                   "ess_bulk_min": _nanmin(diagnostics.ess_bulk(numbers))}
        if f"{name}.steps" in (ctx.info or {}):
            steps = ctx.info[f"{name}.steps"].sum()
            figures.update(
                accept_mean=float(ctx.info[f"{name}.acceptance_sum"].sum() / steps),
                divergences=int(ctx.info[f"{name}.divergences"].sum()),
                grad_evals_per_sweep=float(ctx.info[f"{name}.grad_evals"].sum() / steps))
        if ctx.exact is not None:
            sizes = {p: ctx.params[p].size for p in ctx.exact.paths}
            figures["dependence"] = exact.conditional_sd_ratio(ctx.exact, sizes, set(paths))
        result[name] = figures
    return {"groups": result}


@metric("exact_rel_l2", "exact_band_median", "exact_band_max", "mean_z_max", "var_ratio_min",
        "var_ratio_max")
def _exact(ctx: ReportContext):
    posterior = ctx.exact
    if posterior is None:
        return None
    width = 2 * exact.Z_95 * posterior.f_sd
    figures = {}
    if ctx.data.f_eval is not None:
        figures["exact_rel_l2"] = _rel_l2(posterior.f_mean, ctx.data.f_eval)
    return {**figures, "exact_band_median": float(np.median(width)),
            "exact_band_max": float(np.max(width)),
            **exact.chain_distance(posterior, ctx.model_chain)}


@metric("random_body_exact_rel_l2", "random_body_exact_band_median")
def _random_body_exact(ctx: ReportContext):
    """The exact head posterior on the initial (random) body, when a body was trained."""
    if ctx.initial_params is None or ctx.data.f_eval is None or ctx.exact is None:
        return None
    initial = exact.exact_posterior(ctx.cfg, ctx.initial_params, list(ctx.model_chain), ctx.data)
    return {"random_body_exact_rel_l2": _rel_l2(initial.f_mean, ctx.data.f_eval),
            "random_body_exact_band_median": float(np.median(2 * exact.Z_95 * initial.f_sd))}


COVERAGE_90_RANGE = (0.80, 0.97)  # test_coverage_90 outside it: miscalibrated
NOISE_RESIDUAL_MIN = 0.5  # likelihood σ below this × the training residual sd: overconfident


def fit_warnings(figures: dict, noise_sd: float, residual_sd: float | None) -> list[str]:
    """Warnings about the fit on held-out data: 90% coverage outside COVERAGE_90_RANGE, noise
    far below the training residual sd (both in the units the model sees)."""
    warnings = []
    coverage = figures.get("test_coverage_90")
    low, high = COVERAGE_90_RANGE
    if coverage is not None and not low <= coverage <= high:
        warnings.append(f"test_coverage_90 {coverage:.3f} outside [{low}, {high}]")
    if residual_sd is not None and noise_sd is not None \
            and noise_sd < NOISE_RESIDUAL_MIN * residual_sd:
        warnings.append(f"likelihood sigma {noise_sd:.3g} < {NOISE_RESIDUAL_MIN} x the training "
                        f"residual sd {residual_sd:.3g}")
    return warnings


@metric("verdict")
def _verdict(ctx: ReportContext):
    warnings = diagnostics.verdict(ctx.checks, ctx.cfg.sampler.num_chains, iid=ctx.iid)
    changed = ctx.leaf_variances["unmasked_var_max"]
    if changed != 0.0 and changed is not None:
        warnings.append("frozen leaves at the end of sampling differ from params.npz "
                        f"(unmasked_var_max {changed:.3g})")
    bad = {part: int((~np.isfinite(f)).any(axis=(0, 1, 3)).sum())
           for part, f in ctx.part_draws.items()}
    if any(bad.values()):  # the chain is finite, the model's outputs are not
        warnings.append("the model's outputs are not finite at " + ", ".join(
            f"{n} {part} points" for part, n in bad.items() if n))
    if ctx.heldout is not None:  # then the training rows were evaluated too (report_parts)
        residual = metrics.mean_rmse(ctx.mean_draws("train"), ctx.data.y_train)
        warnings += fit_warnings(ctx.heldout[0], ctx.noise_sd_mean, residual)
    warnings += _worse_than_map(ctx)
    return {"verdict": "ok" if not warnings else "; ".join(warnings)}


def _worse_than_map(ctx: ReportContext) -> list[str]:
    """A warning when the posterior predictive's held-out NLL is worse than the MAP network's
    (a body with capability `map`) by more than the standard error of the per-point excess."""
    if "map" not in body_entry(ctx.cfg).caps or ctx.data.x_test is None:
        return []
    y = ctx.data.y_test
    f_map, noise_sd = ctx.map_predictive
    if ctx.classifier:
        bayes = classify.point_nll(ctx.class_predictive["test"][0], y)
        point = classify.point_nll(f_map, y)
    else:
        bayes = metrics.pointwise_nll(ctx.f_test, y, ctx.noise_for("test"), ctx.noise_predictive)
        point = metrics.point_nll(f_map, y, noise_sd, ctx.noise_predictive)
    worse = metrics.worse_than(bayes, point)
    if worse is None:
        return []
    shift = 0.0 if ctx.classifier else float(np.log(ctx.y_scale))  # as test_nll is reported
    return [f"held-out NLL {np.mean(bayes) + shift:.4g} is worse than the MAP network's "
            f"{np.mean(point) + shift:.4g} by {worse[0]:.3g} (standard error {worse[1]:.2g}): "
            f"the posterior adds no value here; check the prior scale (prior.sigma)"]


METRIC_KEYS = tuple(dict.fromkeys(key for m in METRICS for key in m.keys))  # test_nll: twice


def json_figures(figures: dict) -> dict:
    """`figures` as metrics.json holds them: a figure that is undefined or infinite (NaN,
    inf) is null, which every JSON reader takes (a bare NaN is not JSON)."""
    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        is_float = isinstance(value, float) and not isinstance(value, bool)
        return None if is_float and not math.isfinite(value) else value

    return plain(figures)


NESTED = ("groups", "coefficients")  # {name: {figure: value}}


def checked_figures(figures: dict, path) -> dict:
    """metrics.json's figures as read from `path`, refused (RunDirError, exit 4) unless every
    value is a number, a string, true/false or null, and `groups` and `coefficients` map names
    to such values."""
    def plain(value) -> bool:
        return value is None or isinstance(value, (int, float, str, bool))

    for key, value in figures.items():
        ok = (plain(value) if key not in NESTED else isinstance(value, dict) and all(
            isinstance(inner, dict) and all(plain(v) for v in inner.values())
            for inner in value.values()))
        if not ok:
            raise RunDirError(f"corrupt file {path}: {key} is not a figure headbayes writes")
    return figures


def flat_figures(figures: dict, keys=None) -> dict:
    """`figures` with a nested metric (the Gibbs `groups`: {NAME: {KEY: value}}) as
    `groups.NAME.KEY` entries; `keys` (default: the figures' own) in order, a missing plain one
    as None."""
    flat = {}
    for key in figures if keys is None else keys:
        value = figures.get(key)
        if isinstance(value, dict):
            flat.update({f"{key}.{name}.{k}": v for name, inner in value.items()
                         for k, v in inner.items()})
        elif key != "groups":
            flat[key] = value
    return flat


def compute_figures(ctx: ReportContext) -> dict:
    """Every metric that applies, in METRIC_KEYS order. The convergence diagnostics are
    computed first, so their working memory does not add to that of the function draws."""
    ctx.checks  # noqa: B018 (a cached property: computed now, used by the metrics below)
    figures = {}
    with np.errstate(all="ignore"):  # a non-finite figure is null in metrics.json, and
        for m in METRICS:            # the verdict names what is not finite
            figures.update(m.compute(ctx) or {})
    return figures
