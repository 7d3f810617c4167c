"""Pure metrics from arrays (numpy only); conventions in DESIGN.md §3.

- variance-along-chain of a leaf: variance over the draw axis, averaged over the leaf's
  elements and chains, computed in float64;
- rel-L2: ||posterior mean - truth||_2 / ||truth||_2 on the eval grid;
- band: width of the 5%-95% quantiles of the function draws (no observation noise), pooled
  over chains and draws, on the eval grid.
"""

import numpy as np

__all__ = ["var_along_chain", "leaf_variances", "predictive_summary", "reassemble"]


def var_along_chain(draws: np.ndarray) -> float:
    """Mean over chains and elements of the variance over the draw axis (axis 1)."""
    return float(np.mean(np.var(np.asarray(draws, np.float64), axis=1)))


def reassemble(params: dict, chain: dict) -> dict:
    """Full parameters at every draw: sampled leaves from `chain` (chain, draw, ...), frozen
    leaves broadcast from `params` without copying."""
    lead = next(iter(chain.values())).shape[:2]
    return {path: chain[path] if path in chain else np.broadcast_to(value, lead + value.shape)
            for path, value in params.items()}


def leaf_variances(full: dict, sampled: set) -> dict:
    """`unmasked_var_max` and `masked_var_min` over a reassembled parameter dict."""
    variances = {path: var_along_chain(draws) for path, draws in full.items()}
    frozen = [v for p, v in variances.items() if p not in sampled]
    return {
        "unmasked_var_max": max(frozen) if frozen else None,
        "masked_var_min": min(v for p, v in variances.items() if p in sampled),
    }


def predictive_summary(f_draws: np.ndarray, truth: np.ndarray) -> dict:
    """Mean, 5%/95% band and their figures from function draws (chain, draw, n, out)."""
    pooled = np.asarray(f_draws, np.float64).reshape((-1,) + f_draws.shape[2:])
    mean = pooled.mean(axis=0)
    lo, hi = np.quantile(pooled, [0.05, 0.95], axis=0)
    width = hi - lo
    return {
        "mean": mean, "lo": lo, "hi": hi,
        "rel_l2": float(np.linalg.norm(mean - truth) / np.linalg.norm(truth)),
        "band_median": float(np.median(width)),
        "band_max": float(np.max(width)),
    }
