"""A sampler's position beyond the model's sampled leaves, and its names in the chain: log σ
when `likelihood.sigma=sampled` (`WithNoise`, `headbayes.posterior.noise`) and a physics
likelihood's unknown coefficients (`WithCoefficients`, `headbayes.posterior.physics`)."""

import numpy as np

from headbayes.models.base import leaf_shapes, sampled_paths
from headbayes.models.mask import named_leaves
from headbayes.posterior.noise import NOISE_LEAF, WithNoise
from headbayes.posterior.physics import (COEFFICIENT_PREFIX, WithCoefficients,
                                         coefficient_leaves)

__all__ = ["named_position", "chain_leaves", "model_draws", "noise_draws"]


def named_position(tree) -> dict:
    """{dotted path: leaf} of a sampler position (or a tree shaped like one)."""
    if isinstance(tree, WithNoise):
        return {**named_position(tree.model), NOISE_LEAF: tree.log_sigma}
    if isinstance(tree, WithCoefficients):
        return {**named_leaves(tree.model),
                **{COEFFICIENT_PREFIX + n: v for n, v in tree.coefficients.items()}}
    return named_leaves(tree)


def chain_leaves(cfg) -> dict:
    """{name: shape of one draw} of every array a run's chain parts hold besides the step
    information: the leaves its mask samples, σ's log when `likelihood.sigma=sampled`, and a
    physics likelihood's unknown coefficients."""
    shapes = leaf_shapes(cfg)
    leaves = {path: shapes[path] for path in sampled_paths(cfg)}
    sampled_noise = getattr(cfg.likelihood, "sigma", None) == "sampled"
    return {**leaves, **({NOISE_LEAF: ()} if sampled_noise else {}),
            **coefficient_leaves(cfg.likelihood)}


def model_draws(chain: dict) -> dict:
    """The chain without the noise leaf and the sampled coefficients: the model's leaves."""
    return {p: v for p, v in chain.items()
            if not p.startswith(COEFFICIENT_PREFIX)}  # NOISE_LEAF is likelihood.log_sigma


def noise_draws(chain: dict) -> np.ndarray | None:
    """The predictive's noise sd of every draw, (chain, draw) float64, when it was sampled (a
    Gaussian likelihood's σ, a physics likelihood's sd of u); else None."""
    for leaf in (NOISE_LEAF, f"{COEFFICIENT_PREFIX}log_sigma_u"):
        if leaf in chain:
            return np.exp(np.asarray(chain[leaf], np.float64))
    return None
