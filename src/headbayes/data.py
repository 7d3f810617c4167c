"""Datasets as plain numpy arrays (float32); pure given the config and the files it names.

Synthetic: `sin` (the seed's), `sin3`, `gap` (1-D, no training points inside
[gap_min, gap_max]), `friedman1` (5 inputs). Files: `csv` (a header row naming the columns) and
`npz` (one 1-D array per column), with `inputs` and `target` naming the columns, a test split of
`test_fraction` drawn with `data.seed`, and standardisation by the training split's mean and
standard deviation when `standardize` is true. Relative paths are relative to the directory the
command was typed in.
"""

import csv
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from headbayes.config import DataConfig
from headbayes.errors import ConfigError

__all__ = ["Dataset", "make_dataset", "eval_grid", "TARGETS", "MIN_ROWS"]

MIN_ROWS = 4  # a file needs at least this many rows (some for training, some for testing)


class Dataset(NamedTuple):
    """Arrays of shape (n, features) in float32.

    `x_eval`/`f_eval`: points where the posterior function is summarised and the noiseless
    truth there (`f_eval` None when unknown); `x_test`/`y_test`: held-out data (None when there
    is no test split); `gap`: the (low, high) hole of the `gap` dataset, else None.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_eval: np.ndarray
    f_eval: np.ndarray | None
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    gap: tuple | None = None


def eval_grid(cfg: DataConfig) -> np.ndarray:
    """x = x_min + k * eval_step for k = 0, 1, ... up to x_max inclusive (101 points for the
    seed)."""
    count = int(np.floor((cfg.x_max - cfg.x_min) / cfg.eval_step + 1e-6)) + 1
    return (cfg.x_min + cfg.eval_step * np.arange(count)).astype(np.float32)


TARGETS = {
    "sin": lambda x: np.sin(np.pi * x),  # the seed's
    "sin3": lambda x: np.sin(6 * x) ** 3,  # the seed's higher-frequency caveat
    "gap": lambda x: np.sin(np.pi * x),
}


def _column(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, np.float32)[:, None]


def _one_dimensional(cfg: DataConfig) -> Dataset:
    """x = linspace(x_min, x_max, n_train) (float32), y = target(x) + noise (`gap`: the points
    inside the hole are dropped). Noise is `noise_std * default_rng(data.seed).normal(...)`,
    added in float64 and rounded to float32, exactly as the seed script does; `n_test` test
    points, uniform on [x_min, x_max], come from the same generator afterwards."""
    rng = np.random.default_rng(cfg.seed)
    target = TARGETS[cfg.name]
    x = np.linspace(cfg.x_min, cfg.x_max, cfg.n_train).astype(np.float32)
    y = (target(x) + cfg.noise_std * rng.normal(size=x.shape)).astype(np.float32)
    gap = None
    if cfg.name == "gap":
        gap = (cfg.gap_min, cfg.gap_max)
        outside = (x < cfg.gap_min) | (x > cfg.gap_max)
        x, y = x[outside], y[outside]
    x_eval = eval_grid(cfg)
    test = (None, None)
    if cfg.n_test > 0:
        x_test = rng.uniform(cfg.x_min, cfg.x_max, size=cfg.n_test).astype(np.float32)
        y_test = (target(x_test) + cfg.noise_std * rng.normal(size=cfg.n_test)).astype(np.float32)
        test = (_column(x_test), _column(y_test))
    return Dataset(_column(x), _column(y), _column(x_eval), _column(target(x_eval)), *test, gap)


def _friedman1(x: np.ndarray) -> np.ndarray:
    return (10 * np.sin(np.pi * x[:, 0] * x[:, 1]) + 20 * (x[:, 2] - 0.5) ** 2 + 10 * x[:, 3]
            + 5 * x[:, 4])


def _standardized(cfg: DataConfig, x_train, y_train, x_test, y_test, f_test=None) -> Dataset:
    """Scale inputs and target by the training split's mean and sd (when `standardize`)."""
    if cfg.standardize:
        x_mean, x_sd = x_train.mean(axis=0), x_train.std(axis=0)
        y_mean, y_sd = y_train.mean(), y_train.std()
        x_sd = np.where(x_sd > 0, x_sd, 1.0)
        y_sd = y_sd if y_sd > 0 else 1.0
        x_train, x_test = (x_train - x_mean) / x_sd, (x_test - x_mean) / x_sd
        y_train, y_test = (y_train - y_mean) / y_sd, (y_test - y_mean) / y_sd
        f_test = None if f_test is None else (f_test - y_mean) / y_sd
    f32 = lambda a: None if a is None else np.asarray(a, np.float32)  # noqa: E731
    x_test, y_test = f32(x_test), _column(y_test)
    return Dataset(f32(x_train), _column(y_train), x_test,
                   None if f_test is None else _column(f_test), x_test, y_test)


def _make_friedman1(cfg: DataConfig) -> Dataset:
    """Friedman #1: y = 10 sin(π x1 x2) + 20 (x3 − 0.5)² + 10 x4 + 5 x5 + noise_std·N(0, 1),
    x uniform on [0, 1]⁵; `n_train` + `n_test` points from default_rng(data.seed)."""
    rng = np.random.default_rng(cfg.seed)
    n = cfg.n_train + cfg.n_test
    x = rng.uniform(size=(n, 5))
    f = _friedman1(x)
    y = f + cfg.noise_std * rng.normal(size=n)
    train, test = slice(0, cfg.n_train), slice(cfg.n_train, n)
    return _standardized(cfg, x[train], y[train], x[test], y[test], f[test])


def _read_csv(path: Path) -> dict:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ConfigError(f"data.path: {path} is empty")
    header, body = [h.strip() for h in rows[0]], rows[1:]
    columns = {}
    for j, name in enumerate(header):
        values = []
        for i, row in enumerate(body, start=2):
            try:
                values.append(float(row[j]))
            except (ValueError, IndexError):
                cell = row[j] if j < len(row) else "(missing)"
                raise ConfigError(f"data.path: {path} line {i}, column '{name}': "
                                  f"{cell!r} is not a number") from None
        columns[name] = np.asarray(values)
    return columns


def _read_npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: np.asarray(f[k], np.float64).reshape(-1) for k in f.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, TypeError) as e:
        raise ConfigError(f"data.path: cannot read {path} as npz of numeric columns: {e}") \
            from None


def _make_from_file(cfg: DataConfig) -> Dataset:
    path = Path(cfg.path).expanduser()
    if not cfg.path or not path.is_file():
        raise ConfigError(f"data.path: file {cfg.path!r} not found (relative paths start at "
                          f"{Path.cwd()})")
    columns = _read_csv(path) if cfg.name == "csv" else _read_npz(path)
    wanted = [*cfg.inputs, cfg.target]
    missing = [c for c in wanted if c not in columns]
    if not cfg.inputs or not cfg.target or missing:
        raise ConfigError(f"data.inputs/data.target: columns {missing or wanted} not in {path}; "
                          f"available: {', '.join(columns)}")
    lengths = {len(columns[c]) for c in wanted}
    if len(lengths) != 1:
        raise ConfigError(f"data.path: columns of {path} have different lengths {sorted(lengths)}")
    n = lengths.pop()
    if n < MIN_ROWS:
        raise ConfigError(f"data.path: {path} has {n} rows; at least {MIN_ROWS} are needed")
    x = np.stack([columns[c] for c in cfg.inputs], axis=1)
    y = columns[cfg.target]
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ConfigError(f"data.path: {path} holds non-finite values in the chosen columns")
    order = np.random.default_rng(cfg.seed).permutation(n)
    n_test = min(n - 2, max(1, int(round(cfg.test_fraction * n))))
    test, train = order[:n_test], order[n_test:]
    return _standardized(cfg, x[train], y[train], x[test], y[test])


def make_dataset(cfg: DataConfig) -> Dataset:
    """The dataset `data.name` (see the module docstring)."""
    if cfg.name in TARGETS:
        return _one_dimensional(cfg)
    if cfg.name == "friedman1":
        return _make_friedman1(cfg)
    return _make_from_file(cfg)
