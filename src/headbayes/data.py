"""Synthetic datasets as plain numpy arrays; pure given the config (and its seed)."""

from typing import NamedTuple

import numpy as np

from headbayes.config import DataConfig

__all__ = ["Dataset", "make_dataset", "eval_grid", "TARGETS"]


class Dataset(NamedTuple):
    """Arrays of shape (n, features) in float32; `f_eval` is the noiseless target on `x_eval`."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_eval: np.ndarray
    f_eval: np.ndarray


def eval_grid(cfg: DataConfig) -> np.ndarray:
    """x = x_min + k * eval_step for k = 0, 1, ... up to x_max inclusive (101 points for the
    seed)."""
    count = int(np.floor((cfg.x_max - cfg.x_min) / cfg.eval_step + 1e-6)) + 1
    return (cfg.x_min + cfg.eval_step * np.arange(count)).astype(np.float32)


TARGETS = {
    "sin": lambda x: np.sin(np.pi * x),  # the seed's
    "sin3": lambda x: np.sin(6 * x) ** 3,  # the seed's higher-frequency caveat
}


def make_dataset(cfg: DataConfig) -> Dataset:
    """x = linspace(x_min, x_max, n_train) (float32), y = target(x) + noise.

    Targets: `sin` = sin(πx) (the seed's), `sin3` = sin³(6x).

    Noise is `noise_std * numpy.random.default_rng(data.seed).normal(size=n_train)`, added
    in float64 and rounded to float32, exactly as the seed script does.
    """
    x = np.linspace(cfg.x_min, cfg.x_max, cfg.n_train).astype(np.float32)
    noise = np.random.default_rng(cfg.seed).normal(size=x.shape)
    target = TARGETS[cfg.name]
    y = (target(x) + cfg.noise_std * noise).astype(np.float32)
    x_eval = eval_grid(cfg)
    return Dataset(x[:, None], y[:, None], x_eval[:, None], target(x_eval)[:, None])
