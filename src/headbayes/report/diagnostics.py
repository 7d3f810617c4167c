"""Convergence diagnostics (numpy): rank-normalised split R-hat, bulk and tail ESS, verdict.

Following Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021), "Rank-normalization, folding,
and localization: an improved R-hat", Bayesian Analysis 16(2). Inputs have axes
(chain, draw, number); every figure is per sampled number. Chains are split in halves (a middle
draw is dropped when the count is odd). ESS uses Geyer's initial monotone sequence on
FFT autocovariances. A constant or non-finite input gives NaN, which never passes a check.
The normal quantile is Wichura's algorithm AS 241 (PPND16, 1988), accurate to about 1e-16
relative: numpy alone, so a report imports no scipy.
"""

import numpy as np

__all__ = ["split_chains", "normal_quantile", "rank_normalize", "rhat", "ess_bulk", "ess_tail",
           "verdict", "RHAT_MAX", "ESS_PER_CHAIN_MIN"]

RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100


def split_chains(x: np.ndarray) -> np.ndarray:
    """(C, N, P) -> (2C, N//2, P): first and last halves of every chain."""
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half:]], axis=0)


def _average_ranks(column: np.ndarray) -> np.ndarray:
    """Ranks 1..S of a 1-D array; tied values share the average of their ranks."""
    values, inverse, counts = np.unique(column, return_inverse=True, return_counts=True)
    below = np.cumsum(counts) - counts  # values strictly smaller than each unique value
    return (below + (counts + 1) / 2)[inverse]


# AS 241 (Wichura 1988): numerator and denominator coefficients, highest power first, of the
# central region |p − 1/2| ≤ 0.425 and of the tails with r = sqrt(−log min(p, 1 − p)) ≤ 5, > 5.
_CENTRAL = ((2.5090809287301226727e3, 3.3430575583588128105e4, 6.7265770927008700853e4,
             4.5921953931549871457e4, 1.3731693765509461125e4, 1.9715909503065514427e3,
             1.3314166789178437745e2, 3.3871328727963666080e0),
            (5.2264952788528545610e3, 2.8729085735721942674e4, 3.9307895800092710610e4,
             2.1213794301586595867e4, 5.3941960214247511077e3, 6.8718700749205790830e2,
             4.2313330701600911252e1, 1.0))
_NEAR = ((7.74545014278341407640e-4, 2.27238449892691845833e-2, 2.41780725177450611770e-1,
          1.27045825245236838258e0, 3.64784832476320460504e0, 5.76949722146069140550e0,
          4.63033784615654529590e0, 1.42343711074968357734e0),
         (1.05075007164441684324e-9, 5.47593808499534494600e-4, 1.51986665636164571966e-2,
          1.48103976427480074590e-1, 6.89767334985100004550e-1, 1.67638483018380384940e0,
          2.05319162663775882187e0, 1.0))
_FAR = ((2.01033439929228813265e-7, 2.71155556874348757815e-5, 1.24266094738807843860e-3,
         2.65321895265761230930e-2, 2.96560571828504891230e-1, 1.78482653991729133580e0,
         5.46378491116411436990e0, 6.65790464350110377720e0),
        (2.04426310338993978564e-15, 1.42151175831644588870e-7, 1.84631831751005468180e-5,
         7.86869131145613259100e-4, 1.48753612908506148525e-2, 1.36929880922735805310e-1,
         5.99832206555887937690e-1, 1.0))


def normal_quantile(p: np.ndarray) -> np.ndarray:
    """Φ⁻¹(p) for p in (0, 1), elementwise (float64)."""
    p = np.asarray(p, np.float64)
    q = p - 0.5
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.sqrt(-np.log(np.minimum(p, 1 - p)))
        central = q * _ratio(_CENTRAL, 0.180625 - q * q)
        tail = np.where(r <= 5, _ratio(_NEAR, r - 1.6), _ratio(_FAR, r - 5))
    return np.where(np.abs(q) <= 0.425, central, np.copysign(tail, q))


def _ratio(coefficients, r):
    numerator, denominator = (np.polyval(c, r) for c in coefficients)
    return numerator / denominator


def rank_normalize(x: np.ndarray) -> np.ndarray:
    """Pooled average ranks r -> Φ⁻¹((r − 3/8) / (S + 1/4)), per number."""
    c, n, p = x.shape
    flat = x.reshape(c * n, p)
    ranks = np.stack([_average_ranks(flat[:, j]) for j in range(p)], axis=1).reshape(c, n, p)
    return normal_quantile((ranks - 0.375) / (c * n + 0.25))


def _rhat(x: np.ndarray) -> np.ndarray:
    """Split R-hat of (chains, draws, numbers); NaN with fewer than 2 draws per chain."""
    n = x.shape[1]
    if n < 2:
        return np.full(x.shape[2], np.nan)
    within = x.var(axis=1, ddof=1).mean(axis=0)
    between = n * x.mean(axis=1).var(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(((n - 1) / n * within + between / n) / within)


def rhat(x: np.ndarray) -> np.ndarray:
    """max(bulk R-hat, tail R-hat), rank-normalised and split, per number."""
    x = np.asarray(x, np.float64)
    bulk = _rhat(rank_normalize(split_chains(x)))
    folded = np.abs(x - np.median(x.reshape(-1, x.shape[2]), axis=0))
    tail = _rhat(rank_normalize(split_chains(folded)))
    return np.where(np.isfinite(x).all(axis=(0, 1)), np.maximum(bulk, tail), np.nan)


def _autocovariance(x: np.ndarray) -> np.ndarray:
    """Biased autocovariance along the draw axis, per chain and number."""
    n = x.shape[1]
    centred = x - x.mean(axis=1, keepdims=True)
    size = 2 ** int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(centred, n=size, axis=1)
    return np.fft.irfft(spectrum * np.conj(spectrum), n=size, axis=1)[:, :n] / n


def _ess(x: np.ndarray) -> np.ndarray:
    """ESS of (chains, draws, numbers); NaN with fewer than 2 draws per chain."""
    c, n, p = x.shape
    if n < 2:
        return np.full(p, np.nan)
    acov = _autocovariance(x)
    mean_var = acov[:, 0].mean(axis=0) * n / (n - 1)
    var_plus = mean_var * (n - 1) / n + (x.mean(axis=1).var(axis=0, ddof=1) if c > 1 else 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1 - (mean_var - acov.mean(axis=0)) / var_plus
    rho[0] = 1.0
    k = n // 2
    pairs = rho[: 2 * k].reshape(k, 2, p).sum(axis=1)
    positive = np.cumprod(pairs > 0, axis=0).astype(bool)  # initial positive sequence
    monotone = np.minimum.accumulate(np.where(positive, pairs, np.inf), axis=0)
    tau = -1 + 2 * np.where(positive, monotone, 0.0).sum(axis=0)
    tau = np.maximum(tau, 1 / np.log10(c * n))
    return np.where(np.isfinite(var_plus) & (var_plus > 0), c * n / tau, np.nan)


def ess_bulk(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return np.where(np.isfinite(x).all(axis=(0, 1)), _ess(rank_normalize(split_chains(x))),
                    np.nan)


def ess_tail(x: np.ndarray) -> np.ndarray:
    """min of the ESS of the indicators x ≤ q05 and x ≤ q95."""
    x = np.asarray(x, np.float64)
    flat = x.reshape(-1, x.shape[2])
    lo, hi = np.quantile(flat, [0.05, 0.95], axis=0)
    ess = np.minimum(_ess(split_chains((x <= lo).astype(np.float64))),
                     _ess(split_chains((x <= hi).astype(np.float64))))
    return np.where(np.isfinite(x).all(axis=(0, 1)), ess, np.nan)


def verdict(figures: dict, num_chains: int, iid: bool = False) -> list[str]:
    """Warnings for R-hat > 1.01, ESS < 100 per chain, divergences, non-finite values. With
    `iid` (independent draws from a fitted distribution) R-hat is not judged: chains of i.i.d.
    draws only differ by Monte-Carlo noise."""
    warnings = []
    if not figures["all_finite"]:
        warnings.append("non-finite values in the chain")
    if not iid and not figures["rhat_max"] <= RHAT_MAX:
        warnings.append(f"R-hat {figures['rhat_max']:.4f} > {RHAT_MAX}")
    for key, label in (("ess_bulk_min", "bulk"), ("ess_tail_min", "tail")):
        if not figures[key] >= ESS_PER_CHAIN_MIN * num_chains:
            chains = f"{num_chains} chain{'s' if num_chains != 1 else ''}"
            warnings.append(f"{label} ESS {figures[key]:.3g} < {ESS_PER_CHAIN_MIN * num_chains} "
                            f"({ESS_PER_CHAIN_MIN} per chain, {chains})")
    if not figures["divergences"] == 0:
        warnings.append(f"{figures['divergences']} divergent transitions")
    return warnings
