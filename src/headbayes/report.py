"""The report stage: rebuild everything from a run directory alone -> metrics.json and plots.

The predictive runs through the model itself (`headbayes.predictive`, JAX): frozen stages
before the first sampled one once, the rest for batches of draws.
"""

from pathlib import Path

import numpy as np

from headbayes import diagnostics, exact, metrics, plots, store
from headbayes.config import RunConfig, typed
from headbayes.datasets import make_dataset
from headbayes.errors import ConfigError, RunDirError
from headbayes.predictive import function_draws

__all__ = ["load_config", "compute_report", "write_report", "METRIC_KEYS"]

METRIC_KEYS = ("unmasked_var_max", "masked_var_min", "rel_l2", "band_median", "band_max",
               "truth_coverage_90", "band_gap_ratio", "test_rmse", "test_nll",
               "test_coverage_90", "rhat_max", "ess_bulk_min", "ess_tail_min", "divergences",
               "accept_mean", "exact_rel_l2", "exact_band_median", "random_body_exact_rel_l2",
               "random_body_exact_band_median", "mean_z_max", "var_ratio_min", "var_ratio_max",
               "verdict")


def load_config(run_dir: Path) -> RunConfig:
    """The config the run sampled with: `run_config.json` (written when sampling starts; Hydra
    rewrites `.hydra/config.yaml` whenever a job reuses the directory), else the latter."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    path = Path(run_dir) / "run_config.json"
    if not path.is_file():
        path = Path(run_dir) / ".hydra" / "config.yaml"
    if not path.is_file():
        raise RunDirError(f"missing file {path} (is {run_dir} a headbayes run directory?)")
    try:
        saved = store.read_json(path) if path.suffix == ".json" else OmegaConf.load(path)
        merged = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(RunConfig), saved))
        return typed(merged, strict=False)
    except (OmegaConfBaseException, ValueError) as e:
        raise RunDirError(f"corrupt file {path}: {e}") from None


def _diagnostics(chain: dict, info: dict, num_chains: int) -> dict:
    numbers = np.concatenate([v.reshape(v.shape[:2] + (-1,)) for v in chain.values()], axis=2)
    with np.errstate(invalid="ignore"):
        figures = {"rhat_max": _nanmax(diagnostics.rhat(numbers)),
                   "ess_bulk_min": _nanmin(diagnostics.ess_bulk(numbers)),
                   "ess_tail_min": _nanmin(diagnostics.ess_tail(numbers)),
                   "divergences": int(info["divergences"].sum()) if info else 0,
                   "accept_mean": (float(info["acceptance_sum"].sum() / info["steps"].sum())
                                   if info else None)}
    figures["all_finite"] = bool(np.isfinite(numbers).all())
    return figures


def _nanmax(values: np.ndarray) -> float:
    """Largest value; NaN if any value is NaN (a NaN must never pass a check)."""
    return float(np.nan if np.isnan(values).any() else values.max())


def _nanmin(values: np.ndarray) -> float:
    return float(np.nan if np.isnan(values).any() else values.min())


def _heldout(cfg, data, by_draw: dict, chain: dict, summary: dict, figures: dict) -> dict:
    """Add the truth-coverage, gap and held-out figures that this dataset allows; return the
    arrays the plots need."""
    if data.f_eval is not None:
        figures["truth_coverage_90"] = metrics.truth_coverage(summary, data.f_eval)
    if data.gap is not None:
        figures["band_gap_ratio"] = metrics.band_gap_ratio(summary, data.x_eval, data.gap)
    if data.x_test is None:
        return {"f_test": None}
    from headbayes.likelihoods import make_likelihood

    f_test = function_draws(cfg, by_draw, chain, data.x_test)
    noise_sd = make_likelihood(cfg.likelihood).noise_sd
    heldout, calibration = metrics.heldout(f_test, data.y_test, noise_sd)
    figures.update(heldout)
    return {"f_test": f_test, "calibration": calibration}


def compute_report(run_dir: Path) -> tuple[dict, dict]:
    """(metrics, extras) recomputed from the files; extras hold arrays for the plots and notes."""
    run_dir = Path(run_dir)
    cfg = load_config(run_dir)
    params = store.read_npz(run_dir / "params.npz")
    chain, info = store.load_chain_and_info(run_dir)
    unknown = set(chain) - set(params)
    if unknown:
        raise RunDirError(f"chain leaves {sorted(unknown)} are not in {run_dir / 'params.npz'}")
    for path, draws in chain.items():
        if draws.shape[2:] != params[path].shape:
            raise RunDirError(f"chain leaf {path} has shape {draws.shape[2:]}, "
                              f"params.npz says {params[path].shape}")
    full = metrics.reassemble(params, chain)
    data = make_dataset(cfg.data)
    try:
        f_draws = function_draws(cfg, params, chain, data.x_eval)
    except KeyError as e:
        raise RunDirError(f"{run_dir / 'params.npz'} lacks leaf {e}") from None
    summary = metrics.predictive_summary(f_draws, data.f_eval)
    figures = {**metrics.leaf_variances(full, set(chain)),
               **{k: summary[k] for k in ("rel_l2", "band_median", "band_max")}}
    figures["num_draws"] = int(f_draws.shape[0] * f_draws.shape[1])
    extras_heldout = _heldout(cfg, data, params, chain, summary, figures)
    checks = _diagnostics(chain, info, cfg.sampler.num_chains)
    figures.update({k: v for k, v in checks.items() if k != "all_finite"})
    extras = {"data": data, "summary": summary, "chain": chain, "exact": None, "notes": [],
              **extras_heldout}
    reason = exact.not_applicable_reason(cfg, list(chain))
    if reason is None:
        posterior = exact.exact_posterior(cfg, params, list(chain), data)
        width = 2 * exact.Z_95 * posterior.f_sd
        if data.f_eval is not None:
            figures["exact_rel_l2"] = float(np.linalg.norm(posterior.f_mean - data.f_eval)
                                            / np.linalg.norm(data.f_eval))
        figures.update({
            "exact_band_median": float(np.median(width)),
            "exact_band_max": float(np.max(width)),
            **exact.chain_distance(posterior, chain)})
        extras["exact"] = posterior
        initial_path = run_dir / "params_initial.npz"
        if initial_path.is_file() and data.f_eval is not None:  # Pattern A, same data and mask
            initial = exact.exact_posterior(cfg, store.read_npz(initial_path), list(chain), data)
            figures["random_body_exact_rel_l2"] = float(
                np.linalg.norm(initial.f_mean - data.f_eval) / np.linalg.norm(data.f_eval))
            figures["random_body_exact_band_median"] = float(
                np.median(2 * exact.Z_95 * initial.f_sd))
    else:
        extras["notes"].append(reason)
    warnings = diagnostics.verdict(checks, cfg.sampler.num_chains)
    figures["verdict"] = "ok" if not warnings else "; ".join(warnings)
    return figures, extras


def write_report(run_dir: Path, plot: bool = True) -> tuple[dict, list]:
    """Recompute metrics, write metrics.json (and the plots); return (metrics, notes)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"run directory {run_dir} does not exist")
    figures, extras = compute_report(run_dir)
    store.write_json(run_dir / "metrics.json", figures)
    if plot:
        data = extras["data"]
        if data.x_train.shape[1] == 1:
            plots.plot_predictive(run_dir / "predictive.png", data, extras["summary"],
                                  extras["exact"])
        else:
            plots.plot_observed(run_dir / "predictive.png", data, extras["f_test"])
        if extras["f_test"] is not None:
            plots.plot_calibration(run_dir / "calibration.png", extras["calibration"])
        plots.plot_traces(run_dir / "trace.png", extras["chain"])
    return figures, extras["notes"]
