"""`uci`: a dataset of the standard UCI regression benchmark with its fixed splits.

`data.root` is a folder in the layout of Hernández-Lobato & Adams' benchmark (as the repository's
data/uci/<name>/ ships it): `data.txt` (whitespace-separated numbers, no header),
`index_features.txt` and `index_target.txt` (0-based column numbers), and
`index_train_K.txt`, `index_test_K.txt` (0-based row numbers of split K = `data.split`). With
`data.gap=K` the split is instead the gap split of input K (Foong et al. 2019, "in-between"
uncertainty): the rows sorted by that input (a stable sort), the middle third held out for
testing, the outer two thirds for training. The inputs are named x<column>, the target
y<column>. Inputs and target are standardised with the
training rows (`standardize`), and `val_fraction` of the training rows become a validation part
drawn with `data.seed`. Every file is read from inside `root`; no name in them is followed.
"""

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from headbayes.core.checks import at_least, require
from headbayes.core.errors import ConfigError
from headbayes.datasets.base import DATASETS, Dataset
from headbayes.datasets.files import regular_file
from headbayes.datasets.synthetic import standardized

__all__ = ["UCIOptions", "read_indices", "gap_split"]


@dataclass
class UCIOptions:
    name: str = "uci"
    root: str = "data/uci/yacht"  # relative to where the command is typed
    split: int = 0
    gap: int | None = None  # K: the gap split of input K (0-based among the inputs) instead
    val_fraction: float = 0.0
    standardize: bool = True
    seed: int = 0  # draws the validation part


def _check(options, cfg) -> None:
    require(bool(options.root), "data.root", options.root,
            "a folder in the UCI benchmark layout (e.g. data/uci/yacht)")
    at_least("data.split", options.split, 0)
    if options.gap is not None:
        at_least("data.gap", options.gap, 0)
    require(0 <= options.val_fraction < 1, "data.val_fraction", options.val_fraction,
            "a number in [0, 1)")


def _file(options, name: str) -> Path:
    root = Path(options.root).expanduser()
    path = root / name
    if not path.is_file():
        if root.exists() and not root.is_dir():
            raise ConfigError(f"data.root: {options.root!r} is a file; give the folder that "
                              f"holds data.txt and the index_*.txt files")
        if not root.is_dir():
            raise ConfigError(f"data.root: folder {options.root!r} not found (relative paths "
                              f"start at {Path.cwd()})")
        raise ConfigError(f"data.root: {root} has no {name}"
                          + (f" (is data.split={options.split} beyond its splits?)"
                             if name.startswith("index_") and "_" in name[6:] else ""))
    return path


def read_indices(path: Path, size: int, what: str) -> np.ndarray:
    """0-based integer indices from a text file, each in [0, size)."""
    try:
        with warnings.catch_warnings():  # an empty file: refused below, in one line
            warnings.simplefilter("ignore", UserWarning)
            values = np.loadtxt(regular_file(str(path), what), dtype=np.float64, ndmin=1)
    except ValueError as e:
        raise ConfigError(f"{what}: {path} does not hold integer indices: {e}") from None
    indices = values.astype(np.int64)
    if values.size == 0 or not np.array_equal(indices, values) or indices.min() < 0 \
            or indices.max() >= size:
        raise ConfigError(f"{what}: {path} must hold integers in [0, {size}), one or more")
    return indices


def _columns(options) -> tuple[np.ndarray, int]:
    """(input column numbers, target column number), read without the data."""
    features = read_indices(_file(options, "index_features.txt"), 10**9, "data.root")
    target = read_indices(_file(options, "index_target.txt"), 10**9, "data.root")
    if target.size != 1:
        raise ConfigError(f"data.root: index_target.txt must name one column, got {target}")
    if int(target[0]) in features:  # the target among the inputs: a perfect, false fit
        raise ConfigError(f"data.root: column {int(target[0])} is both the target "
                          f"(index_target.txt) and an input (index_features.txt)")
    if len(set(features.tolist())) != len(features):
        raise ConfigError("data.root: index_features.txt names a column more than once")
    return features, int(target[0])


def _sizes(options) -> tuple[int, int]:
    return len(_columns(options)[0]), 1


def gap_split(column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, test rows) of a gap split: the rows in the order of `column` (stable), the
    middle third (n // 3 rows from rank n // 3 on) held out; both sorted by row number."""
    order = np.argsort(column, kind="stable")
    n = len(order)
    test = order[n // 3:n // 3 + n // 3]
    return np.sort(np.concatenate([order[:n // 3], order[n // 3 + n // 3:]])), np.sort(test)


def _split_rows(cfg, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, test rows): the gap split of input `data.gap`, else standard split
    `data.split` from its index files."""
    n = x.shape[0]
    if cfg.gap is not None:
        if cfg.gap >= x.shape[1]:
            raise ConfigError(f"data.gap: {cfg.gap} is beyond the {x.shape[1]} inputs "
                              f"(0 to {x.shape[1] - 1})")
        if n < 6:
            raise ConfigError(f"data.gap: {n} rows; a gap split needs at least 6")
        return gap_split(x[:, cfg.gap])
    train = read_indices(_file(cfg, f"index_train_{cfg.split}.txt"), n, "data.root")
    test = read_indices(_file(cfg, f"index_test_{cfg.split}.txt"), n, "data.root")
    if np.intersect1d(train, test).size:
        raise ConfigError(f"data.root: split {cfg.split} has rows in both its train and test "
                          f"indices")
    return train, test


@DATASETS.register("uci", UCIOptions, check=_check, sizes=_sizes)
def _make_uci(cfg) -> Dataset:
    features, target = _columns(cfg)
    path = _file(cfg, "data.txt")
    try:
        table = np.loadtxt(regular_file(str(path), "data.root"), dtype=np.float64, ndmin=2)
    except ValueError as e:
        raise ConfigError(f"data.root: {path} is not a table of numbers: {e}") from None
    if max(features.max(), target) >= table.shape[1]:
        raise ConfigError(f"data.root: column indices beyond the {table.shape[1]} columns of "
                          f"{path}")
    x, y = table[:, features], table[:, target]
    train, test = _split_rows(cfg, x)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ConfigError(f"data.root: {path} holds non-finite values")
    data = standardized(cfg, x[train], y[train], x[test], y[test],
                        inputs=tuple(f"x{j}" for j in features), target=f"y{target}")
    return data._replace(rows={"train": train, "test": test})
