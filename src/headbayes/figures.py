"""The metric registry: every figure of metrics.json, with the keys it writes and when it applies.

A metric is a function of a `ReportContext` (the run's config, data, parameters, chain, and
the predictive draws, computed once and shared) that returns {key: value}, or None when it does
not apply to this run (no truth, no test split, no exact reference). `METRIC_KEYS` (the order
of metrics.json, the report table and summary.csv) is derived from the registry, so a new
metric is one function here.
"""

from functools import cached_property
from typing import Callable, NamedTuple

import numpy as np

from headbayes import diagnostics, exact, metrics

__all__ = ["ReportContext", "METRICS", "METRIC_KEYS", "metric", "compute_figures",
           "report_points"]


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
                 initial_params: dict | None = None):
        self.cfg, self.data, self.params, self.chain, self.info = cfg, data, params, chain, info
        self.initial_params = initial_params
        self.notes: list[str] = []

    @cached_property
    def _draws(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Function draws on the eval points and the test points, in one pass."""
        from headbayes.predictive import function_draws

        f = function_draws(self.cfg, self.params, self.chain, report_points(self.data))
        m = len(self.data.x_eval)
        return f[:, :, :m], (None if self.data.x_test is None else f[:, :, m:])

    @cached_property
    def f_eval(self) -> np.ndarray:
        return self._draws[0]

    @cached_property
    def summary(self) -> dict:
        return metrics.predictive_summary(self.f_eval, self.data.f_eval)

    @cached_property
    def f_test(self) -> np.ndarray | None:
        return self._draws[1]

    @cached_property
    def noise_sd(self) -> float:
        """The observation noise the likelihood's predictive adds (model units)."""
        from headbayes.likelihoods import make_likelihood

        return make_likelihood(self.cfg.likelihood).noise_sd

    @cached_property
    def heldout(self) -> tuple[dict, dict] | None:
        """(figures, calibration curve) on the test split, or None without one."""
        if self.f_test is None:
            return None
        return metrics.heldout(self.f_test, self.data.y_test, self.noise_sd)

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
        reason = exact.not_applicable_reason(self.cfg, list(self.chain))
        if reason is not None:
            self.notes.append(reason)
            return None
        return exact.exact_posterior(self.cfg, self.params, list(self.chain), self.data)


def report_points(data) -> np.ndarray:
    """The inputs the report evaluates the function at: the eval points, then the test ones."""
    return data.x_eval if data.x_test is None else np.concatenate([data.x_eval, data.x_test])


def _nanmax(values: np.ndarray) -> float:
    """Largest value; NaN if any value is NaN (a NaN must never pass a check)."""
    return float(np.nan if np.isnan(values).any() else values.max())


def _nanmin(values: np.ndarray) -> float:
    return float(np.nan if np.isnan(values).any() else values.min())


def _rel_l2(mean: np.ndarray, truth: np.ndarray) -> float:
    return float(np.linalg.norm(mean - truth) / np.linalg.norm(truth))


@metric("unmasked_var_max", "masked_var_min")
def _leaf_variances(ctx: ReportContext):
    return metrics.leaf_variances(metrics.reassemble(ctx.params, ctx.chain), set(ctx.chain))


@metric("rel_l2", "band_median", "band_max", "num_draws")
def _band(ctx: ReportContext):
    return {**{k: ctx.summary[k] for k in ("rel_l2", "band_median", "band_max")},
            "num_draws": int(ctx.f_eval.shape[0] * ctx.f_eval.shape[1])}


@metric("truth_coverage_90")
def _truth_coverage(ctx: ReportContext):
    if ctx.data.f_eval is None:
        return None
    return {"truth_coverage_90": metrics.truth_coverage(ctx.summary, ctx.data.f_eval)}


@metric("band_gap_ratio")
def _gap(ctx: ReportContext):
    if ctx.data.gap is None:
        return None
    return {"band_gap_ratio": metrics.band_gap_ratio(ctx.summary, ctx.data.x_eval, ctx.data.gap)}


@metric("test_rmse", "test_nll", "test_coverage_90",
        *(f"coverage_{round(level * 100)}" for level in metrics.LEVELS))
def _heldout(ctx: ReportContext):
    return None if ctx.heldout is None else ctx.heldout[0]


@metric("map_test_rmse", "map_test_nll", "map_test_coverage_90")
def _map_heldout(ctx: ReportContext):
    """The same held-out figures for the MAP network alone (body.mode=pretrained: params.npz
    holds the whole network trained to the MAP of the run's likelihood and prior), with the
    likelihood's noise: what the Bayesian part adds over it."""
    from headbayes.predictive import function_draws

    if ctx.cfg.body.mode != "pretrained" or ctx.data.x_test is None:
        return None
    at_map = {p: ctx.params[p][None, None] for p in ctx.chain}
    f_map = function_draws(ctx.cfg, ctx.params, at_map, ctx.data.x_test)[0, 0]
    figures = metrics.point_heldout(f_map, ctx.data.y_test, ctx.noise_sd)
    return {f"map_{k}": v for k, v in figures.items()}


@metric("rhat_max", "ess_bulk_min", "ess_tail_min", "divergences", "accept_mean")
def _diagnostics(ctx: ReportContext):
    return {k: v for k, v in ctx.checks.items() if k != "all_finite"}


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
            "exact_band_max": float(np.max(width)), **exact.chain_distance(posterior, ctx.chain)}


@metric("random_body_exact_rel_l2", "random_body_exact_band_median")
def _random_body_exact(ctx: ReportContext):
    """The exact head posterior on the initial (random) body, when a body was trained."""
    if ctx.initial_params is None or ctx.data.f_eval is None or ctx.exact is None:
        return None
    initial = exact.exact_posterior(ctx.cfg, ctx.initial_params, list(ctx.chain), ctx.data)
    return {"random_body_exact_rel_l2": _rel_l2(initial.f_mean, ctx.data.f_eval),
            "random_body_exact_band_median": float(np.median(2 * exact.Z_95 * initial.f_sd))}


@metric("verdict")
def _verdict(ctx: ReportContext):
    warnings = diagnostics.verdict(ctx.checks, ctx.cfg.sampler.num_chains)
    return {"verdict": "ok" if not warnings else "; ".join(warnings)}


METRIC_KEYS = tuple(key for m in METRICS for key in m.keys)


def compute_figures(ctx: ReportContext) -> dict:
    """Every metric that applies, in METRIC_KEYS order. The convergence diagnostics are
    computed first, so their working memory does not add to that of the function draws."""
    ctx.checks  # noqa: B018 (a cached property: computed now, used by the metrics below)
    figures = {}
    for m in METRICS:
        figures.update(m.compute(ctx) or {})
    return figures
