"""Dataset registry: each option builds a `Dataset` of float32 arrays; pure given its config and
the files it names.

A dataset entry carries its schema, its checks and `sizes(options) -> (inputs, outputs)`, so
models take their input and output sizes from the data. Each module of this package registers
its datasets when imported; a new dataset is a module here plus `configs/data/NAME.yaml`.
"""

from typing import NamedTuple

import numpy as np

from headbayes.registry import Registry, discover

__all__ = ["Dataset", "Scaling", "DATASETS", "make_dataset", "data_sizes", "IDENTITY",
           "describe", "scaling_from"]

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
    `inputs`/`target`: column names; `scaling`: the standardisation, identity when none.
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


def describe(data: Dataset) -> dict:
    """What predicting on new inputs needs (the run directory's data.json): column names and
    the standardisation constants."""
    scaling = data.scaling or IDENTITY(data.x_train.shape[1], data.y_train.shape[1])
    return {"inputs": list(data.inputs), "target": data.target,
            **{k: np.asarray(v, np.float64).reshape(-1).tolist()
               for k, v in scaling._asdict().items()}}


def scaling_from(description: dict) -> Scaling:
    return Scaling(*(np.asarray(description[k], np.float64) for k in Scaling._fields))


def make_dataset(options) -> Dataset:
    """The dataset of the typed data options."""
    return DATASETS[options.name].build(options)


def data_sizes(options) -> tuple[int, int]:
    """(input columns, output columns) of the dataset, without reading it."""
    return DATASETS[options.name].extras["sizes"](options)


from headbayes.datasets import synthetic  # noqa: E402,F401  (listed first: the seed's)

discover(__name__)
