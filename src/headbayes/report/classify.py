"""Classification figures from draws of the network's logits (numpy, float64).

The predictive of a classifier is the mean over draws s of the class probabilities p_s(x)
(`bernoulli`: [1 − σ(f), σ(f)]; `categorical`: softmax(f)). With p̄ that mean and y the label:
- accuracy: share of points whose argmax p̄ is y;
- test_nll: −mean log p̄_y (the mean negative log predictive density);
- brier: mean over points of Σ_k (p̄_k − 1[y = k])²;
- ece: Σ_b (n_b / n) |accuracy_b − confidence_b| over `ECE_BINS` equal-width bins of the
  confidence max_k p̄_k (bins (0, 1/15], ..., (14/15, 1]);
- entropy: H(p̄) = −Σ_k p̄_k log p̄_k; mutual information: H(p̄) − mean_s H(p_s), the part of
  the entropy due to the posterior (0 for a single network).
Draws are taken in blocks, so memory stays bounded whatever their number.
"""

import numpy as np

from headbayes.posterior.likelihoods import LIKELIHOODS

__all__ = ["ECE_BINS", "probabilities", "predictive", "class_figures", "reliability",
           "entropy"]

ECE_BINS = 15
_TINY = 1e-300


def probabilities(logits: np.ndarray, family: str) -> np.ndarray:
    """Class probabilities (..., K) from logits (..., out) of the family (its registry entry's
    `probabilities`)."""
    return LIKELIHOODS[family].extras["probabilities"](np.asarray(logits, np.float64))


def entropy(p: np.ndarray) -> np.ndarray:
    return -np.sum(p * np.log(np.maximum(p, _TINY)), axis=-1)


def predictive(logit_draws: np.ndarray, family: str, max_bytes: int = 256 * 2**20) -> tuple:
    """(p̄ (n, K), mean_s H(p_s) (n,)) from draws (chain, draw, n, out), taken in blocks of
    draws whose float64 work (about six arrays of the block's numbers) stays near
    `max_bytes`."""
    pooled = logit_draws.reshape((-1,) + logit_draws.shape[2:])
    block = max(1, max_bytes // (48 * max(1, int(np.prod(pooled.shape[1:])))))
    total, mean_entropy = None, 0.0
    for first in range(0, len(pooled), block):
        p = probabilities(pooled[first:first + block], family)
        total = p.sum(axis=0) if total is None else total + p.sum(axis=0)
        mean_entropy = mean_entropy + entropy(p).sum(axis=0)
    return total / len(pooled), mean_entropy / len(pooled)


def reliability(p_mean: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> dict:
    """Per confidence bin: its mean confidence, accuracy and count (empty bins dropped)."""
    confidence = p_mean.max(axis=1)
    correct = p_mean.argmax(axis=1) == labels
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    rows = [(confidence[which == b].mean(), correct[which == b].mean(), int((which == b).sum()))
            for b in range(bins) if (which == b).any()]
    return {"confidence": np.array([r[0] for r in rows]),
            "accuracy": np.array([r[1] for r in rows]),
            "count": np.array([r[2] for r in rows])}


def point_nll(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(n,) negative log probability of each point's label under `p` (n, classes)."""
    labels = np.asarray(y).reshape(-1).astype(int)
    return -np.log(np.maximum(p[np.arange(len(labels)), labels], _TINY))


def class_figures(p_mean: np.ndarray, y: np.ndarray) -> dict:
    """accuracy, test_nll, brier, ece and the mean entropy of p̄ against labels `y` (n, 1)."""
    labels = np.asarray(y).reshape(-1).astype(int)
    onehot = np.eye(p_mean.shape[1])[labels]
    table = reliability(p_mean, labels)
    return {"accuracy": float(np.mean(p_mean.argmax(axis=1) == labels)),
            "test_nll": float(np.mean(point_nll(p_mean, labels))),
            "brier": float(np.mean(np.sum((p_mean - onehot) ** 2, axis=1))),
            "ece": float(np.sum(table["count"] * np.abs(table["accuracy"] - table["confidence"]))
                         / len(labels)),
            "entropy": float(np.mean(entropy(p_mean)))}
