"""Your own table: `csv` (a header row naming the columns) or `npz` (one 1-D array per
column), with `inputs` and `target` naming the columns, a test split of `test_fraction` drawn
with `data.seed`, and standardisation by the training split's mean and standard deviation when
`standardize` is true. Relative paths are relative to the directory the command was typed in.
"""

import csv
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from headbayes.checks import require
from headbayes.datasets import DATASETS, Dataset
from headbayes.datasets.synthetic import standardized
from headbayes.errors import ConfigError

__all__ = ["FileOptions", "read_table", "MIN_ROWS"]

MIN_ROWS = 4  # a file needs at least this many rows (some for training, some for testing)


@dataclass
class FileOptions:
    name: str = "csv"
    path: str = ""
    inputs: list[str] = field(default_factory=list)
    target: str = ""
    test_fraction: float = 0.2
    standardize: bool = True
    seed: int = 0  # draws the test split


def _check(options, cfg) -> None:
    require(bool(options.path), "data.path", options.path, f"a file for data '{options.name}'")
    require(len(options.inputs) >= 1 and bool(options.target), "data.inputs",
            list(options.inputs),
            "a non-empty list of column names, with data.target naming the target column")
    require(0 < options.test_fraction < 1, "data.test_fraction", options.test_fraction,
            "a number in (0, 1)")


def _sizes(options) -> tuple[int, int]:
    return len(options.inputs), 1


def _read_csv(path: Path, what: str) -> dict:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ConfigError(f"{what}: {path} is empty")
    header, body = [h.strip() for h in rows[0]], rows[1:]
    columns = {}
    for j, name in enumerate(header):
        values = []
        for i, row in enumerate(body, start=2):
            try:
                values.append(float(row[j]))
            except (ValueError, IndexError):
                cell = row[j] if j < len(row) else "(missing)"
                raise ConfigError(f"{what}: {path} line {i}, column '{name}': "
                                  f"{cell!r} is not a number") from None
        columns[name] = np.asarray(values)
    return columns


def _read_npz(path: Path, what: str) -> dict:
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: np.asarray(f[k], np.float64).reshape(-1) for k in f.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, TypeError) as e:
        raise ConfigError(f"{what}: cannot read {path} as npz of numeric columns: {e}") \
            from None


def read_table(path: Path, kind: str, what: str) -> dict:
    """{column name: float64 values} of a csv or npz file; ConfigError naming `what` (the
    option or flag that gave the file), the line and the column of a problem."""
    return _read_csv(path, what) if kind == "csv" else _read_npz(path, what)


@DATASETS.register("npz", FileOptions, check=_check, sizes=_sizes)
@DATASETS.register("csv", FileOptions, check=_check, sizes=_sizes)
def _make_from_file(cfg) -> Dataset:
    path = Path(cfg.path).expanduser()
    if not cfg.path or not path.is_file():
        raise ConfigError(f"data.path: file {cfg.path!r} not found (relative paths start at "
                          f"{Path.cwd()})")
    columns = read_table(path, cfg.name, "data.path")
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
    return standardized(cfg, x[train], y[train], x[test], y[test], inputs=tuple(cfg.inputs),
                        target=cfg.target)
