"""Your own table: `csv` (a text table) or `npz` (one 1-D array per column).

`target` names the target column; `inputs` the input columns (empty: every other column).
A csv's `delimiter` is `auto` (the first line's comma, semicolon or tab, else runs of
whitespace), one of `,` `;` `tab` `whitespace`, or any single character; without a header row
(`header: false`) the columns are named 0, 1, 2, ... A UTF-8 byte-order mark, blank lines and
columns not used (they may hold text) are ignored. With `classes: true` the target holds class
labels (integers or text), numbered 0 .. K − 1 in numeric order (text order when not all are
integers); numbers are one class however written ("1" and "1.0"); every class needs a training
row; their names are kept for the report and `predict`. The test split is the file
`test_path` when given (same columns), else `test_fraction` of the rows drawn with `data.seed`;
`val_fraction` of the training rows become a validation part
(`headbayes.datasets.with_validation`). Inputs and target are standardised with the training
rows' mean and standard deviation when `standardize` is true. Relative paths are relative to
the directory the command was typed in.
"""

import csv
import functools
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from headbayes.core.checks import require
from headbayes.core.store import open_npz
from headbayes.core.errors import ConfigError
from headbayes.core.memory import available_memory
from headbayes.datasets.base import DATASETS, Dataset
from headbayes.datasets.synthetic import standardized

__all__ = ["FileOptions", "read_table", "MIN_ROWS", "DELIMITERS", "read_text_table", "regular_file",
           "refuse_non_finite"]

MIN_ROWS = 4  # a file needs at least this many rows (some for training, some for testing)
DELIMITERS = {",": ",", ";": ";", "tab": "\t", "whitespace": None}


@dataclass
class FileOptions:
    name: str = "csv"
    path: str = ""
    inputs: list[str] = field(default_factory=list)  # empty: every column but the target
    target: str = ""
    test_fraction: float = 0.2
    standardize: bool = True
    seed: int = 0  # draws the test split and the validation part
    delimiter: str = "auto"
    header: bool = True
    test_path: str = ""  # a file of test rows (same columns); empty: test_fraction of path
    val_fraction: float = 0.0
    classes: bool = False  # the target holds class labels (integers or strings)


def _check(options, cfg) -> None:
    require(bool(options.path), "data.path", options.path, f"a file for data '{options.name}'")
    require(bool(options.target), "data.target", options.target, "the target column's name")
    require(0 < options.test_fraction < 1, "data.test_fraction", options.test_fraction,
            "a number in (0, 1)")
    require(0 <= options.val_fraction < 1, "data.val_fraction", options.val_fraction,
            "a number in [0, 1)")
    require(options.delimiter == "auto" or options.delimiter in DELIMITERS
            or len(options.delimiter) == 1, "data.delimiter", options.delimiter,
            "auto, whitespace, tab or one character")
    inputs = [str(c) for c in options.inputs or ()]
    require(len(set(inputs)) == len(inputs), "data.inputs", list(inputs),
            "distinct columns (one is named twice)")
    require(str(options.target) not in inputs, "data.inputs", list(inputs),
            f"columns other than the target {options.target!r}")


def _input_names(options) -> list[str]:
    """The input columns: `inputs`, else every numeric column of the file but the target (a
    column whose first row is not a number holds text: `_text_names`)."""
    if options.inputs:
        return list(options.inputs)
    kinds = _column_kinds(regular_file(options.path), options)
    return [c for c, number in kinds.items() if number and c != str(options.target)]


def _text_names(options) -> list[str]:
    """Columns of the file that hold text (their first row is not a number), the target
    excepted: left out of the default inputs, with a note in the report."""
    kinds = _column_kinds(regular_file(options.path), options)
    return [c for c, number in kinds.items() if not number and c != str(options.target)]


def _sizes(options) -> tuple[int, int]:
    return len(_input_names(options)), (_class_count(options) if options.classes else 1)


def _class_count(options) -> int:
    path = regular_file(options.path)
    return _count_classes(path, path.stat().st_mtime_ns, options.name, options.delimiter,
                          options.header, str(options.target))


@functools.lru_cache(maxsize=32)
def _count_classes(path: Path, _stamp: int, kind: str, delimiter: str, header: bool,
                   target: str) -> int:
    """The number of classes of a file's target (cached by path and modification time: the
    size checks ask for it several times)."""
    if kind == "npz":
        return len(class_names(label_text(_npz_labels(path, "data.path", target))))
    table = read_text_table(path, "data.path", delimiter, header, only=set(), text={target})
    if target not in table:
        raise ConfigError(f"data.target: no column {target!r} in {path}")
    return len(class_names(label_text(table[target])))


def label_text(labels: np.ndarray) -> np.ndarray:
    """Class labels as text, one spelling per number when every label is a number ("1",
    "1.0" and " 1" are class "1"; "0.50" is "0.5"); text labels as they are."""
    labels = np.asarray(labels, dtype=str)
    try:
        numbers = np.array([float(v) for v in labels.tolist()])
    except ValueError:
        return labels
    if not np.isfinite(numbers).all():
        return labels
    return np.array([str(int(v)) if v == int(v) else repr(float(v)) for v in numbers.tolist()],
                    dtype=str)


def class_names(labels: np.ndarray) -> tuple:
    """The distinct labels, in numeric order when all are integers, else in text order."""
    distinct = sorted(set(labels.tolist()))
    try:
        return tuple(sorted(distinct, key=int))
    except ValueError:
        return tuple(distinct)


def _npz_labels(path: Path, what: str, target: str) -> np.ndarray:
    """An npz array of class labels as text (integers written as such)."""
    try:
        with open_npz(path) as f:
            values = np.asarray(f[target]).reshape(-1) if target in f.files else None
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise ConfigError(f"{what}: cannot read {path} as npz: {e}") from None
    if values is None:
        raise ConfigError(f"data.target: no array {target!r} in {path}")
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values) & (values == np.round(values))):
            raise ConfigError(f"{what}: class labels in {path} must be integers or text")
        values = values.astype(np.int64)
    return values.astype(str)


MAX_CELL = 1000  # characters of one cell of a text table
CELL_BYTES = 64  # memory per cell while a text table is parsed (str, list slot, float: 42 measured)


def regular_file(path: str, what: str = "data.path") -> Path:
    """`path` as a regular file; ConfigError when it is missing or not a regular file (a
    device such as /dev/zero, a FIFO or a folder would be read without end or not at all)."""
    resolved = Path(path).expanduser()
    if path and resolved.exists() and not resolved.is_file():
        raise ConfigError(f"{what}: {path!r} is not a regular file (a device, FIFO or folder); "
                          f"give a csv or npz file")
    if not path or not resolved.is_file():
        raise ConfigError(f"{what}: file {path!r} not found (relative paths start at "
                          f"{Path.cwd()})")
    size, available = resolved.stat().st_size, available_memory()
    if available is not None and size > available // 4:  # its rows take several times more
        raise ConfigError(f"{what}: {path!r} holds {size / 2**30:.1f} GiB, more than a quarter "
                          f"of the {available / 2**30:.1f} GiB of memory free: too large to read")
    return resolved


def _column_kinds(path: Path, options, what: str = "data.path") -> dict:
    """{column name: whether its first row is a number (npz: a numeric array)} of a file;
    `what`: the option that named it, for messages."""
    return dict(_kinds_of(path, path.stat().st_mtime_ns, options.name, options.delimiter,
                          options.header, what))


@functools.lru_cache(maxsize=32)
def _kinds_of(path: Path, _stamp: int, kind: str, delimiter: str, header: bool,
              what: str) -> tuple:
    """`_column_kinds` as (name, is a number) pairs, read once per file (cached by path and
    modification time)."""
    if kind == "npz":  # every array, text ones (class labels) included
        try:
            with open_npz(path) as f:
                kinds = {k: f[k].dtype.kind in "biuf" for k in f.files}
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
            raise ConfigError(f"{what}: cannot read {path} as npz of numeric columns: "
                              f"{e}") from None
    else:
        if path.suffix.lower() == ".npz":
            raise ConfigError(f"{what}: {path} is an npz file; read it with data=npz")
        kinds = read_text_table(path, what, delimiter, header, names_only=True)
    return tuple(kinds.items())


def _lines(path: Path, what: str) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{what}: {path} is not UTF-8 text ({e.reason} at byte {e.start}); "
                          f"save it as UTF-8") from None
    except OSError as e:
        raise ConfigError(f"{what}: cannot read {path}: {e.strerror}") from None
    cells = 1 + sum(text.count(c) for c in ",;\t \n")  # at least as many as the table has
    need, available = 3 * len(text) + CELL_BYTES * cells, available_memory()
    if available is not None and need > available // 2:
        raise ConfigError(f"{what}: reading {path} ({cells:,} cells at most) would take about "
                          f"{need / 2**30:.1f} GiB, more than half of the "
                          f"{available / 2**30:.1f} GiB of memory free")
    return text.splitlines()


def _split_rows(lines: list[str], delimiter: str) -> list[tuple[int, list[str]]]:
    """(line number, cells) of every non-blank line; `delimiter` as in the module docstring."""
    filled = [(i, line) for i, line in enumerate(lines, start=1) if line.strip()]
    if delimiter == "auto":
        first = filled[0][1] if filled else ""
        delimiter = next((d for d in (",", ";", "\t") if d in first), None)
    else:
        delimiter = DELIMITERS.get(delimiter, delimiter)
    if delimiter is None:
        rows = [(i, line.split()) for i, line in filled]
    else:
        cells = csv.reader([line for _, line in filled], delimiter=delimiter)
        rows = [(i, [cell.strip() for cell in row]) for (i, _), row in zip(filled, cells)]
    for i, row in rows:
        if any(len(cell) > MAX_CELL for cell in row):
            raise ValueError(f"line {i} holds a cell of more than {MAX_CELL} characters, which "
                             f"is no number nor class label")
    return rows


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def read_text_table(path: Path, what: str, delimiter: str = "auto", header: bool = True,
                    names_only: bool = False, only=None, text=frozenset()) -> dict:
    """{column name: float64 values} of a text table (see the module docstring): the columns
    named in `only` (every column when None; others may hold text), or with `names_only` the
    names mapped to whether their first row is a number; the columns named in `text` come back
    as lists of strings."""
    try:
        rows = _split_rows(_lines(path, what), delimiter)
    except (ValueError, csv.Error) as e:  # a cell over MAX_CELL (csv: over its field limit)
        raise ConfigError(f"{what}: {path}: {e}") from None
    if not rows:
        raise ConfigError(f"{what}: {path} is empty")
    width = len(rows[0][1])
    names = list(rows[0][1]) if header else [str(j) for j in range(width)]
    if "" in names:
        raise ConfigError(f"{what}: {path}: column {names.index('') + 1} of the header has no "
                          f"name")
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ConfigError(f"{what}: {path} names the columns {duplicated} more than once")
    body = rows[1:] if header else rows
    long = next(((i, len(row)) for i, row in body if len(row) > width), None)
    if long is not None:  # a thousands separator or a shifted row: never cut short silently
        raise ConfigError(f"{what}: {path} line {long[0]} has {long[1]} cells, the "
                          f"{'header' if header else 'first row'} {width}")
    if names_only:  # {name: whether its first row is a number}
        if not body:
            raise ConfigError(f"{what}: {path} has a header row but no data rows")
        first = body[0][1]
        return {name: j < len(first) and _is_number(first[j]) for j, name in enumerate(names)}
    columns = {}
    for j, name in enumerate(names):
        if name in text:
            columns[name] = [row[j] if j < len(row) else "" for _, row in body]
            continue
        if only is not None and name not in only:
            continue
        values = []
        for i, row in body:
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
        with open_npz(path) as f:  # text arrays (labels) are skipped
            arrays = {k: f[k] for k in f.files}
        flat = [k for k, v in arrays.items() if v.ndim > 1 and v.size != len(v)]
        if flat:
            raise ConfigError(f"{what}: array {flat[0]!r} of {path} has shape "
                              f"{arrays[flat[0]].shape}: each column holds one value per row")
        return {k: np.asarray(v, np.float64).reshape(-1) for k, v in arrays.items()
                if v.dtype.kind in "biuf"}
    except ConfigError:
        raise  # already says what and where (a ValueError, too)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, TypeError) as e:
        raise ConfigError(f"{what}: cannot read {path} as npz of numeric columns: {e}") \
            from None


def read_table(path: Path, kind: str, what: str, delimiter: str = "auto",
               header: bool = True, only=None) -> dict:
    """{column name: float64 values} of a csv or npz file (a csv: only the columns in `only`
    when given); ConfigError naming `what` (the option or flag that gave the file), the line
    and the column of a problem."""
    if kind == "csv":
        return read_text_table(path, what, delimiter, header, only=only)
    return _read_npz(path, what)


def _read_columns(options, path: Path, what: str, inputs: list) -> tuple[dict, np.ndarray]:
    """({input: float64 values}, target) of one file in one read; the target as text labels
    with `classes`, else as numbers."""
    target = str(options.target)
    if not options.classes:
        columns = read_table(path, options.name, what, options.delimiter, options.header,
                             only={*inputs, target})
        return columns, columns[target]
    if options.name == "npz":
        return _read_npz(path, what), label_text(_npz_labels(path, what, target))
    columns = read_text_table(path, what, options.delimiter, options.header, only=set(inputs),
                              text={target})
    labels = label_text(columns[target])
    empty = np.flatnonzero(np.char.str_len(labels) == 0)
    if empty.size:  # a missing label, not a class named ''
        raise ConfigError(f"{what}: {path}: the class label (column {target!r}) is empty in "
                          f"data row {empty[0] + 1}")
    return columns, labels


def refuse_non_finite(values: np.ndarray, names: list[str], where: str) -> None:
    """ConfigError naming the column and data row of the first NaN or infinity in `values`
    (rows × the columns `names`); `where` starts the message (the option and the file)."""
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        row, column = bad[0]
        raise ConfigError(f"{where} holds a non-finite value ({values[row, column]}) in column "
                          f"'{names[column]}', data row {row + 1}")


def _table(options, path: Path, what: str, wanted: list[str]) -> tuple:
    """(x, y) of the `wanted` columns (inputs, then the target) of one file."""
    kinds = _column_kinds(path, options, what)
    missing = [c for c in wanted if c not in kinds]
    if missing:
        raise ConfigError(f"data.inputs/data.target: columns {missing} not in {path}; "
                          f"available: {', '.join(kinds)}")
    numeric = wanted if not options.classes else wanted[:-1]
    if options.name == "npz" and not all(kinds[c] for c in numeric):
        raise ConfigError(f"{what}: columns {[c for c in numeric if not kinds[c]]} of {path} "
                          f"are not real numbers (text or complex arrays)")
    columns, y = _read_columns(options, path, what, wanted[:-1])
    lengths = {len(columns[c]) for c in wanted[:-1]} | {len(y)}
    if len(lengths) != 1:
        raise ConfigError(f"{what}: columns of {path} have different lengths {sorted(lengths)}")
    x = np.stack([columns[c] for c in wanted[:-1]], axis=1)
    refuse_non_finite(x if options.classes else np.column_stack([x, y]), wanted,
                      f"{what}: {path}")
    _check_magnitude(x, y if not options.classes else None, wanted, path, what)
    return x, y


LARGEST = 1e100  # a larger magnitude's square (standardising, an RMSE) overflows float64 soon


def _check_magnitude(x: np.ndarray, y: np.ndarray | None, wanted: list, path: Path,
                     what: str) -> None:
    """ConfigError for values beyond LARGEST in magnitude, and for a numeric target that is
    the same in every row (no model can learn anything from it)."""
    for name, column in zip(wanted, [*x.T, *([] if y is None else [y])]):
        largest = float(np.max(np.abs(column))) if len(column) else 0.0
        if largest > LARGEST:
            raise ConfigError(f"{what}: column {name} of {path} holds values up to "
                              f"{largest:.3g} in magnitude; rescale it (at most {LARGEST:g})")
    if y is not None and len(y) >= MIN_ROWS and np.all(y == y[0]):  # fewer: refused later
        raise ConfigError(f"{what}: the target {wanted[-1]} of {path} is {y[0]:g} in every "
                          f"row: there is nothing to learn")


def _classes(options) -> int | None:
    return _class_count(options) if options.classes else None


@DATASETS.register("npz", FileOptions, check=_check, sizes=_sizes, classes=_classes)
@DATASETS.register("csv", FileOptions, check=_check, sizes=_sizes, classes=_classes)
def _make_from_file(cfg) -> Dataset:
    path = regular_file(cfg.path)
    inputs = _input_names(cfg)
    if not inputs:
        text = [c for c, number in _column_kinds(path, cfg).items()
                if not number and c != str(cfg.target)]
        raise ConfigError(f"data.inputs: {path} has no numeric column besides the target "
                          f"{cfg.target!r}"
                          + (f"; {', '.join(text)} hold values that are not numbers (their "
                             f"first row), which are not used as inputs" if text else ""))
    wanted = [*inputs, str(cfg.target)]
    x, y = _table(cfg, path, "data.path", wanted)
    if cfg.test_path:
        test_file = Path(cfg.test_path).expanduser()
        if not test_file.is_file():
            raise ConfigError(f"data.test_path: file {cfg.test_path!r} not found (relative "
                              f"paths start at {Path.cwd()})")
        x_test, y_test = _table(cfg, test_file, "data.test_path", wanted)
        x_train, y_train = x, y
        rows = {"train": np.arange(len(y)), "test": np.arange(len(y_test))}
    else:
        n = len(y)
        if n < MIN_ROWS:
            raise ConfigError(f"data.path: {path} has {n} rows; at least {MIN_ROWS} are needed")
        order = np.random.default_rng(cfg.seed).permutation(n)
        n_test = min(n - 2, max(1, int(round(cfg.test_fraction * n))))
        test, train = order[:n_test], order[n_test:]
        x_train, y_train, x_test, y_test = x[train], y[train], x[test], y[test]
        rows = {"train": train, "test": test}
    if len(y_train) < 2 or len(y_test) < 1:
        raise ConfigError(f"data.path: {len(y_train)} training and {len(y_test)} test rows; "
                          f"at least 2 and 1 are needed")
    classes = None
    if cfg.classes:  # labels -> 0 .. K − 1 in the order of class_names
        classes = class_names(y if not cfg.test_path else y_train)
        index = {name: k for k, name in enumerate(classes)}
        unknown = sorted(set(y_test.tolist()) - set(index))
        if unknown:
            raise ConfigError(f"data.test_path: classes {unknown} are not in the training rows "
                              f"({', '.join(classes)})")
        untrained = sorted(set(classes) - set(y_train.tolist()), key=classes.index)
        if untrained:
            raise ConfigError(f"data.path: classes {untrained} have no training row (all their "
                              f"rows are in the test split); a classifier cannot learn them: "
                              f"choose another data.seed or data.test_fraction, or remove "
                              f"their rows")
        y_train, y_test = (np.array([index[v] for v in part], np.float64)
                           for part in (y_train, y_test))
    data = standardized(cfg, x_train, y_train, x_test, y_test, inputs=tuple(inputs),
                        target=str(cfg.target), classes=classes)
    return data._replace(ignored=tuple(c for c in _text_names(cfg) if c not in inputs),
                         rows=rows)
