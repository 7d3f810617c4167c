"""Dataset registry: each option builds a `Dataset` of float32 arrays; pure given its config and
the files it names.

A dataset entry carries its schema, its checks and `sizes(options) -> (inputs, outputs)`, so
models take their input and output sizes from the data. Each module of this package registers
its datasets when imported; a new dataset is a module here plus `configs/data/NAME.yaml`.
"""

from typing import NamedTuple

import numpy as np

from headbayes.core.registry import Registry

__all__ = ["Dataset", "Scaling", "DATASETS", "make_dataset", "data_sizes", "IDENTITY", "describe",
           "scaling_from", "with_validation", "report_parts", "report_points"]

DATASETS = Registry("data")


class Scaling(NamedTuple):
    """Standardisation constants: model units = (original − shift) / scale, per column."""

    x_shift: np.ndarray
    x_scale: np.ndarray
    y_shift: np.ndarray
    y_scale: np.ndarray

    def x_to_model(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, np.float64) - self.x_shift) / self.x_scale).astype(np.float32)

    def y_to_original(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(y, np.float64) * self.y_scale + self.y_shift


def IDENTITY(inputs: int, outputs: int = 1) -> Scaling:  # noqa: N802 (a constant's factory)
    return Scaling(np.zeros(inputs), np.ones(inputs), np.zeros(outputs), np.ones(outputs))


class Dataset(NamedTuple):
    """Arrays of shape (n, features) in float32, in the units the model sees.

    `x_eval`/`f_eval`: points where the posterior function is summarised and the noiseless
    truth there (`f_eval` None when unknown); `x_test`/`y_test`: held-out data (None when there
    is no test split); `gap`: the (low, high) hole of the `gap` dataset, else None;
    `inputs`/`target`: column names; `scaling`: the standardisation, identity when none;
    `x_val`/`y_val`: a validation part carved from the training rows (None without one);
    `classes`: the class names when the target holds class labels 0 .. K − 1 (None for a
    numeric target); `x_ood`: inputs far from the data (None when the dataset has none);
    `rows`: for data read from a file, {"train", "test"(, "val")}: the 0-based data rows of the
    file (of `test_path` for "test" when there is one) each part's rows are, in their order.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_eval: np.ndarray
    f_eval: np.ndarray | None
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    gap: tuple | None = None
    inputs: tuple = ("x",)
    target: str = "y"
    scaling: Scaling | None = None
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    classes: tuple | None = None
    x_ood: np.ndarray | None = None
    ignored: tuple = ()  # a file's text columns left out of the inputs (noted in the report)
    rows: dict | None = None


def describe(data: Dataset) -> dict:
    """What predicting on new inputs needs (the run directory's data.json): column names, the
    class names (classifiers) and the standardisation constants."""
    scaling = data.scaling or IDENTITY(data.x_train.shape[1], data.y_train.shape[1])
    return {"inputs": list(data.inputs), "target": data.target,
            **({"classes": list(data.classes)} if data.classes is not None else {}),
            **({"ignored_columns": list(data.ignored)} if data.ignored else {}),
            **{k: np.asarray(v, np.float64).reshape(-1).tolist()
               for k, v in scaling._asdict().items()}}


def scaling_from(description: dict) -> Scaling:
    return Scaling(*(np.asarray(description[k], np.float64) for k in Scaling._fields))


def make_dataset(options) -> Dataset:
    """The dataset of the typed data options, with its validation part carved out when the
    options have `val_fraction` > 0."""
    data = DATASETS[options.name].build(options)
    fraction = getattr(options, "val_fraction", 0.0)
    return with_validation(data, fraction, options.seed) if fraction > 0 else data


def with_validation(data: Dataset, fraction: float, seed: int) -> Dataset:
    """`data` with round(fraction · n) of its training rows (drawn with
    numpy.random.default_rng(seed + 1)) moved to the validation part; at least one row stays
    on each side."""
    n = len(data.x_train)
    n_val = min(n - 1, max(1, int(round(fraction * n))))
    order = np.random.default_rng(seed + 1).permutation(n)
    val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
    rows = None if data.rows is None else {
        **data.rows, "train": data.rows["train"][train], "val": data.rows["train"][val]}
    return data._replace(x_train=data.x_train[train], y_train=data.y_train[train],
                         x_val=data.x_train[val], y_val=data.y_train[val], rows=rows)


def data_sizes(options) -> tuple[int, int]:
    """(input columns, output columns or number of classes) of the dataset, without reading
    it (a file: its header, or its class column)."""
    return DATASETS[options.name].extras["sizes"](options)


def report_parts(data) -> dict:
    """{part: inputs} the report evaluates the function at: the eval points; with a test split
    the test points and, for a numeric target, the training points; the validation and ood
    points when there are some."""
    parts = {"eval": data.x_eval}
    if data.x_test is not None:
        parts["test"] = data.x_test
    if data.x_test is not None and data.classes is None:  # train_rmse and the fit verdict
        parts["train"] = data.x_train
    if data.x_val is not None:
        parts["val"] = data.x_val
    if data.x_ood is not None:
        parts["ood"] = data.x_ood
    return parts


def report_points(data) -> np.ndarray:
    """Every input of `report_parts`, concatenated in its order."""
    return np.concatenate(list(report_parts(data).values()))
