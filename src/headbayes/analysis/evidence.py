"""Type-II maximum likelihood for a linear-Gaussian model (numpy, float64): the log evidence in
the eigenbasis of the Gram matrix, MacKay's fixed point for the noise and prior precisions,
and the noise sd that maximizes the validation rows' predictive density."""

import numpy as np


__all__ = ["EVIDENCE_MAX_ITER", "log_evidence", "maximize_evidence", "eigenbasis", "fixed_point",
           "maximize_validation"]

EVIDENCE_MAX_ITER = 1000
_TOLERANCE = 1e-10  # relative change of α and β that ends the fixed point


def log_evidence(eigenvalues, projected, yy, n, alpha, beta) -> float:
    """log N(y; 0, I/β + J Jᵀ/α) from the eigenvalues λ of JᵀJ, the projections Vᵀ Jᵀ y and
    yᵀy (y: the targets minus the frozen offset; n: their count)."""
    lam = np.maximum(eigenvalues, 0.0)
    m = beta * projected / (beta * lam + alpha)
    sse = yy - 2 * m @ projected + np.sum(lam * m**2)
    return float(0.5 * (len(lam) * np.log(alpha) + n * np.log(beta) - beta * sse
                        - alpha * m @ m - np.sum(np.log(beta * lam + alpha))
                        - n * np.log(2 * np.pi)))


def maximize_evidence(gram, moment, yy, n, sigma=None, prior_sigma=None) -> dict:
    """{"likelihood_sigma", "prior_sigma", "log_evidence", "iterations"} maximising the
    evidence over the scales given as None (the others stay fixed). `gram` = JᵀJ,
    `moment` = Jᵀy, `yy` = yᵀy, float64."""
    lam, c, _ = eigenbasis(gram, moment)
    return fixed_point(lam, c, yy, n, sigma, prior_sigma)


def eigenbasis(gram, moment) -> tuple:
    """(λ ≥ 0, Vᵀ moment, V) of JᵀJ = V diag(λ) Vᵀ: all the evidence needs of J, once."""
    lam, vectors = np.linalg.eigh(np.asarray(gram, np.float64))
    return np.maximum(lam, 0.0), vectors.T @ np.asarray(moment, np.float64), vectors


def fixed_point(lam, c, yy, n, sigma=None, prior_sigma=None) -> dict:
    """`maximize_evidence` in the eigenbasis (`eigenbasis`): MacKay's fixed point."""
    beta = 1.0 / sigma**2 if sigma is not None else n / max(yy, 1e-300) * 10.0
    alpha = 1.0 / prior_sigma**2 if prior_sigma is not None else 1.0
    iterations = 0
    for iterations in range(1, EVIDENCE_MAX_ITER + 1):
        m = beta * c / (beta * lam + alpha)
        gamma = float(np.sum(beta * lam / (beta * lam + alpha)))
        sse = max(yy - 2 * m @ c + np.sum(lam * m**2), 1e-300)
        new_alpha = gamma / max(m @ m, 1e-300) if prior_sigma is None else alpha
        new_beta = max(n - gamma, 1e-12) / sse if sigma is None else beta
        change = max(abs(new_alpha / alpha - 1), abs(new_beta / beta - 1))
        alpha, beta = new_alpha, new_beta
        if change < _TOLERANCE:
            break
    return {"likelihood_sigma": float(1 / np.sqrt(beta)),
            "prior_sigma": float(1 / np.sqrt(alpha)),
            "log_evidence": log_evidence(lam, c, yy, n, alpha, beta),
            "iterations": iterations}


def maximize_validation(gram, moment, yy, n, jac_val, y_val, prior_sigma=None) -> dict:
    """{"likelihood_sigma", "prior_sigma", "val_nll_standardized", "log_evidence", ...}: σ
    maximising the predictive density of the validation rows (`jac_val`, `y_val`: their design
    and targets minus the offset) under the posterior of the training rows, with the prior
    scale at its evidence maximum for each σ (or fixed). A bounded 1-D search over log σ."""
    from scipy.optimize import minimize_scalar

    lam, c, vectors = eigenbasis(gram, moment)
    projected_val = np.asarray(jac_val, np.float64) @ vectors

    def at(log_sigma: float) -> tuple:
        sigma = float(np.exp(log_sigma))
        found = fixed_point(lam, c, yy, n, sigma=sigma, prior_sigma=prior_sigma)
        alpha, beta = found["prior_sigma"] ** -2, sigma ** -2
        mean = projected_val @ (beta * c / (beta * lam + alpha))
        var = projected_val**2 @ (1 / (beta * lam + alpha)) + 1 / beta
        nll = 0.5 * np.mean(np.log(2 * np.pi * var) + (y_val - mean) ** 2 / var)
        return float(nll), found

    spread = float(np.sqrt(max(np.mean(y_val**2), 1e-12)))
    bounds = (np.log(spread * 1e-4), np.log(spread * 10))
    best = minimize_scalar(lambda v: at(v)[0], bounds=bounds, method="bounded",
                           options={"xatol": 1e-4})
    nll, found = at(float(best.x))
    return {**found, "val_nll_standardized": nll}
