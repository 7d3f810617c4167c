"""Pure metrics from arrays (numpy only); conventions in docs/config.md (Numerical conventions).

- variance-along-chain of a leaf: variance over the draw axis, averaged over the leaf's
  elements and chains, computed in float64;
- rel-L2: ||posterior mean - truth||_2 / ||truth||_2 on the eval grid;
- band: width of the 5%-95% quantiles of the function draws (no observation noise), pooled
  over chains and draws, on the eval grid;
- held-out figures use the posterior predictive with observation noise: the mixture over
  draws s of p(y | f_s(x), noise), the likelihood's `NoisePredictive` (default Gaussian:
  N(f_s(x), likelihood.sigma²)). Its central intervals come from one noisy replicate per
  draw, the family's `replicate` with numpy.random.default_rng(0).
"""

import numpy as np

from headbayes.posterior.likelihoods import GAUSSIAN_NOISE, NoisePredictive

__all__ = ["var_along_chain", "leaf_variances", "predictive_summary", "heldout",
           "coverage", "truth_coverage", "mean_rmse", "band_gap_ratio", "point_heldout", "LEVELS",
           "CALIBRATION_LEVELS", "Z_95"]

LEVELS = (0.5, 0.8, 0.9, 0.95)
from headbayes.core.normal import Z_95  # noqa: E402
CALIBRATION_LEVELS = tuple(np.round(np.arange(0.05, 0.96, 0.05), 2))


def var_along_chain(draws: np.ndarray) -> float:
    """Mean over chains and elements of the variance over the draw axis (axis 1)."""
    return float(np.mean(np.var(np.asarray(draws, np.float64), axis=1)))


def leaf_variances(params: dict, chain: dict, frozen_end: dict | None) -> dict:
    """`masked_var_min`: the smallest variance-along-chain over the sampled leaves (`chain`).
    `unmasked_var_max`: over the frozen leaves, the largest variance between their saved values
    (`params`, params.npz) and the values the sampling loop held at its end (`frozen_end`,
    frozen_end.npz): 0.0 exactly when every frozen leaf is unchanged bit for bit; None when
    the run kept no end values; NaN when a frozen leaf is missing from them."""
    unmasked = None
    if frozen_end is not None:
        unmasked = 0.0
        for path in (p for p in params if p not in chain):
            if path not in frozen_end or frozen_end[path].shape != params[path].shape:
                return {"unmasked_var_max": float("nan"), **_masked_min(chain)}
            pair = np.stack([params[path], frozen_end[path]]).astype(np.float64)
            if pair.size:
                unmasked = max(unmasked, float(pair.var(axis=0).max()))
    return {"unmasked_var_max": unmasked, **_masked_min(chain)}


def _masked_min(chain: dict) -> dict:
    return {"masked_var_min": min(var_along_chain(draws) for draws in chain.values())}


def predictive_summary(f_draws: np.ndarray, truth: np.ndarray,
                       max_bytes: int = 64 * 2**20) -> dict:
    """Mean, 5%/95% band and their figures from function draws (chain, draw, n, out);
    rel_l2 is None when the truth is unknown. Computed in float64, a block of points at a
    time (each block's draws under `max_bytes`)."""
    pooled = f_draws.reshape((-1,) + f_draws.shape[2:])
    block = max(1, max_bytes // (8 * pooled.shape[0] * int(np.prod(pooled.shape[2:]))))
    mean, lo, hi = (np.empty(pooled.shape[1:]) for _ in range(3))
    for start in range(0, pooled.shape[1], block):
        part = np.asarray(pooled[:, start:start + block], np.float64)
        mean[start:start + block] = part.mean(axis=0)
        lo[start:start + block], hi[start:start + block] = np.quantile(part, [0.05, 0.95],
                                                                       axis=0)
    width = hi - lo
    return {
        "mean": mean, "lo": lo, "hi": hi,
        "rel_l2": (None if truth is None
                   else float(np.linalg.norm(mean - truth) / np.linalg.norm(truth))),
        "band_median": float(np.median(width)),
        "band_max": float(np.max(width)),
    }


def _pooled(f_draws: np.ndarray) -> np.ndarray:
    """(chain, draw, n, 1) -> (draws, n) in float64."""
    return np.asarray(f_draws, np.float64).reshape((-1,) + f_draws.shape[2:])[..., 0]


def coverage(f_draws: np.ndarray, y: np.ndarray, sigma: float, levels,
             noise: NoisePredictive = GAUSSIAN_NOISE) -> dict:
    """{level: fraction of y inside the central `level` predictive interval}."""
    return _coverage(_pooled(f_draws), y, sigma, levels, noise)


def _coverage(pooled: np.ndarray, y: np.ndarray, sigma, levels, noise: NoisePredictive) -> dict:
    replicates = noise.replicate(np.random.default_rng(0), pooled, sigma)
    y = np.asarray(y, np.float64)[:, 0]
    result = {}
    for level in levels:
        lo, hi = np.quantile(replicates, [(1 - level) / 2, (1 + level) / 2], axis=0)
        result[float(level)] = float(np.mean((y >= lo) & (y <= hi)))
    return result


def heldout(f_draws: np.ndarray, y: np.ndarray, sigma,
            noise: NoisePredictive = GAUSSIAN_NOISE) -> tuple[dict, dict]:
    """(figures, calibration curve): test_rmse (posterior mean), test_nll (mean negative log
    predictive density), coverage at LEVELS; and coverage at every CALIBRATION_LEVELS level,
    all from one set of predictive replicates. `sigma`: the noise scale of `noise` (the
    likelihood's `NoisePredictive`), a number, one per draw (draws pooled over chains, 1) or
    one per draw and point (draws, n)."""
    pooled = _pooled(f_draws)
    calibration = _coverage(pooled, y, sigma, CALIBRATION_LEVELS, noise)  # LEVELS among them
    log_mean = -pointwise_nll(f_draws, y, sigma, noise)
    y = np.asarray(y, np.float64)[:, 0]
    figures = {"test_rmse": float(np.sqrt(np.mean((pooled.mean(axis=0) - y) ** 2))),
               "test_nll": float(-np.mean(log_mean)),
               "test_coverage_90": calibration[0.9],
               **{f"coverage_{round(level * 100)}": calibration[level] for level in LEVELS}}
    return figures, calibration


def pointwise_nll(f_draws: np.ndarray, y: np.ndarray, sigma,
                  noise: NoisePredictive = GAUSSIAN_NOISE) -> np.ndarray:
    """(n,) negative log predictive density at each test point: the draws' mixture (arguments
    as `heldout`)."""
    logp = noise.logpdf(_pooled(f_draws), np.asarray(y, np.float64)[:, 0], sigma)
    peak = logp.max(axis=0)
    return -(peak + np.log(np.mean(np.exp(logp - peak), axis=0)))


def point_nll(f: np.ndarray, y: np.ndarray, sigma,
              noise: NoisePredictive = GAUSSIAN_NOISE) -> np.ndarray:
    """(n,) negative log density of one network's predictive at each test point (arguments
    as `point_heldout`)."""
    return -noise.logpdf(np.asarray(f, np.float64)[:, 0], np.asarray(y, np.float64)[:, 0],
                         sigma)


def worse_than(nll: np.ndarray, reference: np.ndarray) -> tuple[float, float] | None:
    """(mean excess, its standard error) of the per-point `nll` over `reference`'s on the
    same points, when the mean excess is more than its standard error; else None."""
    excess = np.asarray(nll, np.float64) - np.asarray(reference, np.float64)
    if excess.size < 2 or not np.all(np.isfinite(excess)):
        return None
    error = float(np.std(excess, ddof=1) / np.sqrt(excess.size))
    mean = float(np.mean(excess))
    return (mean, error) if mean > error else None


def point_heldout(f: np.ndarray, y: np.ndarray, sigma,
                  noise: NoisePredictive = GAUSSIAN_NOISE) -> dict:
    """Held-out figures of one network (no posterior): predictive p(y | f(x), sigma) of
    `noise` (default N(f(x), sigma²)) at every test point; RMSE, mean negative log density,
    and the share of y in the central 90% interval (Gaussian: f ± 1.6449 sigma). `f` and `y`
    have shape (n, 1); `sigma` a number or one per point (n,)."""
    nll = point_nll(f, y, sigma, noise)
    y, f = np.asarray(y, np.float64)[:, 0], np.asarray(f, np.float64)[:, 0]
    residual = y - f
    return {"test_rmse": float(np.sqrt(np.mean(residual**2))), "test_nll": float(np.mean(nll)),
            "test_coverage_90": float(np.mean(noise.covers_90(f, y, sigma)))}


def mean_rmse(f_draws: np.ndarray, y: np.ndarray) -> float:
    """RMSE of the posterior mean function (draws (chain, draw, n, 1)) against `y` (n, 1)."""
    mean = _pooled(f_draws).mean(axis=0)
    return float(np.sqrt(np.mean((mean - np.asarray(y, np.float64)[:, 0]) ** 2)))


def truth_coverage(summary: dict, truth: np.ndarray) -> float:
    """Fraction of eval points whose noiseless truth lies inside the 90% function band."""
    return float(np.mean((truth >= summary["lo"]) & (truth <= summary["hi"])))


def band_gap_ratio(summary: dict, x_eval: np.ndarray, gap: tuple) -> float:
    """Median band width inside the gap / median band width outside it (1-D inputs)."""
    width = (summary["hi"] - summary["lo"])[:, 0]
    inside = (x_eval[:, 0] > gap[0]) & (x_eval[:, 0] < gap[1])
    return float(np.median(width[inside]) / np.median(width[~inside]))
