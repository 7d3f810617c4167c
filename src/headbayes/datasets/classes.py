"""Datasets with class labels: `two_moons` (generated) and `digits` (scikit-learn's 8×8 digits).

Targets are class labels 0 .. K − 1 stored as float32 (n, 1); `Dataset.classes` names them.
- `two_moons`: two interleaving half circles (the upper one class 0, the lower one class 1,
  shifted as scikit-learn's make_moons), `n_train` + `n_test` points with Gaussian noise of sd
  `noise`, drawn with numpy.random.default_rng(seed); `n_ood` points uniform on the circle of
  radius `ood_radius` around the data's centre, each at distance ≥ 2 from every training and
  test point (checked). The eval points are the test points. Inputs are not standardised
  (they are O(1)).
- `digits`: the 1,797 8×8 images scikit-learn ships inside its package (no download; the
  optional extra `headbayes[digits]`), pixels scaled to [0, 1], flat rows of 64 columns;
  `test_fraction` held out with `seed`.
"""

from dataclasses import dataclass

import numpy as np

from headbayes.core.checks import at_least, positive_float, require
from headbayes.core.errors import ConfigError
from headbayes.datasets.base import DATASETS, IDENTITY, Dataset

__all__ = ["MoonsOptions", "DigitsOptions", "two_moons", "OOD_DISTANCE"]

OOD_DISTANCE = 2.0


@dataclass
class MoonsOptions:
    name: str = "two_moons"
    n_train: int = 200
    n_test: int = 500
    noise: float = 0.1
    n_ood: int = 200
    ood_radius: float = 4.5
    seed: int = 0


@dataclass
class DigitsOptions:
    name: str = "digits"
    test_fraction: float = 0.2
    seed: int = 0


def _check_moons(options, cfg) -> None:
    at_least("data.n_train", options.n_train, 2)
    at_least("data.n_test", options.n_test, 1)
    at_least("data.n_ood", options.n_ood, 0)
    require(0 <= options.noise <= 0.5, "data.noise", options.noise, "a number in [0, 0.5]")
    positive_float("data.ood_radius", options.ood_radius)


def _moons(n: int, noise: float, rng) -> tuple[np.ndarray, np.ndarray]:
    upper = n // 2
    angle = np.concatenate([rng.uniform(0, np.pi, upper), rng.uniform(0, np.pi, n - upper)])
    x = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    x[upper:] = np.stack([1 - np.cos(angle[upper:]), 0.5 - np.sin(angle[upper:])], axis=1)
    y = np.concatenate([np.zeros(upper), np.ones(n - upper)])
    return x + noise * rng.normal(size=x.shape), y


def _min_distance(a: np.ndarray, b: np.ndarray, block: int = 2**16) -> float:
    """The smallest distance between a row of `a` and a row of `b`, over blocks of `b`'s
    rows (len(a) × block distances at a time, never len(a) × len(b))."""
    return min(float(np.linalg.norm(a[:, None, :] - b[None, i:i + block, :], axis=2).min())
               for i in range(0, len(b), block))


def two_moons(options: MoonsOptions) -> Dataset:
    rng = np.random.default_rng(options.seed)
    x, y = _moons(options.n_train + options.n_test, options.noise, rng)
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    train, test = slice(0, options.n_train), slice(options.n_train, None)
    centre = x.mean(axis=0)
    angle = rng.uniform(0, 2 * np.pi, options.n_ood)
    ood = centre + options.ood_radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    if len(ood):  # the contract of the module docstring
        gaps = _min_distance(ood, x)
        if gaps < OOD_DISTANCE:
            raise ConfigError(f"data.ood_radius: the ood points come within {gaps:.2f} of the "
                              f"data; make it larger")
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    return Dataset(f32(x[train]), f32(y[train, None]), f32(x[test]), None, f32(x[test]),
                   f32(y[test, None]), inputs=("x1", "x2"), target="class",
                   scaling=IDENTITY(2), classes=("0", "1"), x_ood=f32(ood))


DATASETS.register("two_moons", MoonsOptions, check=_check_moons, sizes=lambda o: (2, 2),
                  classes=lambda o: 2)(two_moons)


def _load_digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ConfigError("data=digits needs scikit-learn, which ships the digits inside its "
                          "package: pip install 'headbayes[digits]'") from None
    return load_digits()


def _check_digits(options, cfg) -> None:
    require(0 < options.test_fraction < 1, "data.test_fraction", options.test_fraction,
            "a number in (0, 1)")
    _load_digits()  # a missing scikit-learn is a config error, before anything compiles


@DATASETS.register("digits", DigitsOptions, check=_check_digits, sizes=lambda o: (64, 10),
                   classes=lambda o: 10)
def digits(options: DigitsOptions) -> Dataset:
    bunch = _load_digits()
    x = np.asarray(bunch.data, np.float64) / 16.0
    y = np.asarray(bunch.target, np.float64)
    order = np.random.default_rng(options.seed).permutation(len(y))
    n_test = max(1, int(round(options.test_fraction * len(y))))
    test, train = order[:n_test], order[n_test:]
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    return Dataset(f32(x[train]), f32(y[train, None]), f32(x[test]), None, f32(x[test]),
                   f32(y[test, None]), inputs=tuple(f"pixel{j}" for j in range(64)),
                   target="digit", scaling=IDENTITY(64), classes=tuple(str(d) for d in range(10)))
