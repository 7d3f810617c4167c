"""Synthetic datasets: `sin` (the seed's), `sin3`, `gap` (1-D, no training points inside
[gap_min, gap_max]) and `friedman1` (5 inputs, standardised with the training split)."""

from dataclasses import dataclass

import numpy as np

from headbayes.core.checks import at_least, nonnegative_float, positive_float, require
from headbayes.core.errors import ConfigError
from headbayes.datasets.base import DATASETS, IDENTITY, Dataset, Scaling

__all__ = ["CurveOptions", "GapOptions", "Friedman1Options", "eval_grid", "TARGETS",
           "standardized"]


@dataclass
class CurveOptions:
    """y = target(x) + noise_std · N(0, 1) on linspace(x_min, x_max, n_train)."""

    name: str = "sin"
    n_train: int = 32
    noise_std: float = 0.05
    seed: int = 0  # numpy.random.default_rng(seed) draws the noise
    x_min: float = -1.0
    x_max: float = 1.0
    eval_step: float = 0.02  # eval grid x_min, x_min + eval_step, ..., x_max
    n_test: int = 0  # held-out points, uniform on [x_min, x_max]


@dataclass
class ShiftedOptions(CurveOptions):
    name: str = "sin_shift"
    frequency: float = 1.0  # y = sin(frequency · π · x + phase) + noise
    phase: float = 0.0


@dataclass
class GapOptions(CurveOptions):
    name: str = "gap"
    gap_min: float = -0.3
    gap_max: float = 0.3


@dataclass
class Friedman1Options:
    name: str = "friedman1"
    n_train: int = 200
    n_test: int = 500
    noise_std: float = 1.0
    seed: int = 0
    standardize: bool = True


def _check_curve(options, cfg) -> None:
    at_least("data.n_train", options.n_train, 1)
    at_least("data.n_test", options.n_test, 0)
    nonnegative_float("data.noise_std", options.noise_std)
    require(np.isfinite(options.x_min), "data.x_min", options.x_min, "finite")
    require(np.isfinite(options.x_max) and options.x_max > options.x_min, "data.x_max",
            options.x_max, f"finite and > data.x_min ({options.x_min})")
    positive_float("data.eval_step", options.eval_step)
    require((options.x_max - options.x_min) / options.eval_step <= 1e6, "data.eval_step",
            options.eval_step, "large enough for at most 1e6 eval points")
    if options.name == "gap":
        require(options.x_min < options.gap_min < options.gap_max < options.x_max,
                "data.gap_max", options.gap_max, "such that x_min < gap_min < gap_max < x_max")
    for key in ("frequency", "phase"):  # sin_shift's curve: a NaN or inf makes every target NaN
        if hasattr(options, key):
            require(np.isfinite(getattr(options, key)), f"data.{key}", getattr(options, key),
                    "a finite number")


def _check_friedman1(options, cfg) -> None:
    at_least("data.n_train", options.n_train, 1)
    at_least("data.n_test", options.n_test, 0)
    nonnegative_float("data.noise_std", options.noise_std)


def _one_column(options) -> tuple[int, int]:
    return 1, 1


def eval_grid(cfg) -> np.ndarray:
    """x = x_min + k * eval_step for k = 0, 1, ... up to x_max inclusive (101 points for the
    seed)."""
    count = int(np.floor((cfg.x_max - cfg.x_min) / cfg.eval_step + 1e-6)) + 1
    return (cfg.x_min + cfg.eval_step * np.arange(count)).astype(np.float32)


TARGETS = {  # name -> target(x, options)
    "sin": lambda x, cfg: np.sin(np.pi * x),  # the seed's
    "sin3": lambda x, cfg: np.sin(6 * x) ** 3,  # the seed's higher-frequency caveat
    "gap": lambda x, cfg: np.sin(np.pi * x),
    # a task shifted from the seed's (transfer, sin_lora)
    "sin_shift": lambda x, cfg: np.sin(cfg.frequency * np.pi * x + cfg.phase),
}


def _column(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, np.float32)[:, None]


@DATASETS.register("sin_shift", ShiftedOptions, check=_check_curve, sizes=_one_column)
@DATASETS.register("gap", GapOptions, check=_check_curve, sizes=_one_column)
@DATASETS.register("sin3", CurveOptions, check=_check_curve, sizes=_one_column)
@DATASETS.register("sin", CurveOptions, check=_check_curve, sizes=_one_column)  # applied first
def _one_dimensional(cfg) -> Dataset:
    """x = linspace(x_min, x_max, n_train) (float32), y = target(x) + noise (`gap`: the points
    inside the hole are dropped). Noise is `noise_std * default_rng(data.seed).normal(...)`,
    added in float64 and rounded to float32, exactly as the seed script does; `n_test` test
    points, uniform on [x_min, x_max], come from the same generator afterwards."""
    rng = np.random.default_rng(cfg.seed)
    target = lambda x: TARGETS[cfg.name](x, cfg)  # noqa: E731
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
    return Dataset(_column(x), _column(y), _column(x_eval), _column(target(x_eval)), *test, gap,
                   scaling=IDENTITY(1))


def _friedman1(x: np.ndarray) -> np.ndarray:
    return (10 * np.sin(np.pi * x[:, 0] * x[:, 1]) + 20 * (x[:, 2] - 0.5) ** 2 + 10 * x[:, 3]
            + 5 * x[:, 4])


TINY_SD = 1e-12  # an input's sd below this fraction of its magnitude has underflowed


def standardized(cfg, x_train, y_train, x_test, y_test, f_test=None,
                 inputs: tuple = ("x",), target: str = "y", classes: tuple | None = None
                 ) -> Dataset:
    """Scale inputs and target by the training split's mean and sd (when `standardize`); a
    target of class labels (`classes` names them) is left as it is."""
    scaling = IDENTITY(x_train.shape[1])
    if cfg.standardize:
        x_mean, x_sd = x_train.mean(axis=0), x_train.std(axis=0)
        y_mean, y_sd = (0.0, 1.0) if classes else (y_train.mean(), y_train.std())
        lost = (np.ptp(x_train, axis=0) > 0) & ~(
            x_sd > TINY_SD * np.abs(x_train).max(axis=0, initial=0))
        if lost.any():  # its spread underflowed: standardising would divide by 0 or noise
            at = int(np.argmax(lost))
            name = inputs[at] if len(inputs) == len(x_sd) else f"input {at}"
            raise ConfigError(f"data: column {name} varies too little for float64 to "
                              f"standardise (values near {x_mean[at]:.3g}); rescale it")
        x_sd = np.where(x_sd > 0, x_sd, 1.0)
        y_sd = y_sd if y_sd > 0 else 1.0
        x_train, x_test = (x_train - x_mean) / x_sd, (x_test - x_mean) / x_sd
        y_train, y_test = (y_train - y_mean) / y_sd, (y_test - y_mean) / y_sd
        f_test = None if f_test is None else (f_test - y_mean) / y_sd
        scaling = Scaling(x_mean, x_sd, np.atleast_1d(y_mean), np.atleast_1d(y_sd))
    f32 = lambda a: None if a is None else np.asarray(a, np.float32)  # noqa: E731
    x_test, y_test = f32(x_test), _column(y_test)
    return Dataset(f32(x_train), _column(y_train), x_test,
                   None if f_test is None else _column(f_test), x_test, y_test,
                   inputs=tuple(inputs), target=target, scaling=scaling, classes=classes)


@DATASETS.register("friedman1", Friedman1Options, check=_check_friedman1,
                   sizes=lambda options: (5, 1))
def _make_friedman1(cfg) -> Dataset:
    """Friedman #1: y = 10 sin(π x1 x2) + 20 (x3 − 0.5)² + 10 x4 + 5 x5 + noise_std·N(0, 1),
    x uniform on [0, 1]⁵; `n_train` + `n_test` points from default_rng(data.seed)."""
    rng = np.random.default_rng(cfg.seed)
    n = cfg.n_train + cfg.n_test
    x = rng.uniform(size=(n, 5))
    f = _friedman1(x)
    y = f + cfg.noise_std * rng.normal(size=n)
    train, test = slice(0, cfg.n_train), slice(cfg.n_train, n)
    return standardized(cfg, x[train], y[train], x[test], y[test], f[test],
                        inputs=tuple(f"x{i + 1}" for i in range(5)))


@dataclass
class GrowingNoiseOptions:
    """y = sin(πx) + sd(x) · N(0, 1) with sd(x) = noise_min + (noise_max − noise_min) ·
    (x − x_min) / (x_max − x_min): noise that grows with x (for `likelihood=heteroscedastic`)."""

    name: str = "sin_growing_noise"
    n_train: int = 200
    n_test: int = 500
    noise_min: float = 0.02
    noise_max: float = 0.4
    seed: int = 0
    x_min: float = -1.0
    x_max: float = 1.0
    eval_step: float = 0.02


def _check_growing(options, cfg) -> None:
    at_least("data.n_train", options.n_train, 2)
    at_least("data.n_test", options.n_test, 0)
    nonnegative_float("data.noise_min", options.noise_min)
    nonnegative_float("data.noise_max", options.noise_max)
    require(np.isfinite(options.x_max) and np.isfinite(options.x_min)
            and options.x_max > options.x_min, "data.x_max", options.x_max,
            f"finite and > data.x_min ({options.x_min})")
    positive_float("data.eval_step", options.eval_step)
    require((options.x_max - options.x_min) / options.eval_step <= 1e6, "data.eval_step",
            options.eval_step, "large enough for at most 1e6 eval points")


@DATASETS.register("sin_growing_noise", GrowingNoiseOptions, check=_check_growing,
                   sizes=_one_column)
def _growing_noise(cfg) -> Dataset:
    """Training x uniform on [x_min, x_max] (sorted), then the test x, then the noises, all from
    numpy.random.default_rng(data.seed)."""
    rng = np.random.default_rng(cfg.seed)
    x = np.sort(rng.uniform(cfg.x_min, cfg.x_max, cfg.n_train))
    x_test = rng.uniform(cfg.x_min, cfg.x_max, cfg.n_test)

    def noisy(x):
        sd = cfg.noise_min + (cfg.noise_max - cfg.noise_min) * (x - cfg.x_min) / (
            cfg.x_max - cfg.x_min)
        return np.sin(np.pi * x) + sd * rng.normal(size=x.shape)

    y, y_test = noisy(x), noisy(x_test)
    x_eval = eval_grid(cfg)
    test = (_column(x_test), _column(y_test)) if cfg.n_test else (None, None)
    return Dataset(_column(x), _column(y), _column(x_eval), _column(np.sin(np.pi * x_eval)),
                   *test, scaling=IDENTITY(1))
