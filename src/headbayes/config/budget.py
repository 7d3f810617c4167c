"""Limits checked before anything is built or compiled: seeds that fit in 32 bits, step counts
that fit the loop's int32 counters, and a memory estimate against the memory available.

The estimate (bytes) adds, for the float32 numbers a run holds at once: the kept draws as the
report reads them (keep x chains x sampled numbers, float32 and a float64 copy), the model (4
copies: values, gradients, two optimiser moments), the per-step draws of VI
(num_mc_samples x sampled numbers, 3 copies, per chain), HMC's and NUTS' Hessian start
(`mass_init: hessian`: sampled numbers², 3 copies, per chain) and the data (rows x columns,
float64, 2 copies; a data file counts 4 times its size for parsing). It is a lower bound of what
the run needs, so a run it refuses could not have finished; the message names the largest part.
Once the data is read, `check_report_memory` adds what the report will hold: the function draws
at every point it evaluates and the exact reference's Jacobians.
"""

import dataclasses
import math
import os

from headbayes.analysis.exact import not_applicable_reason
from headbayes.core.checks import require
from headbayes.core.errors import ConfigError
from headbayes.core.memory import available_memory
from headbayes.datasets import data_sizes, report_points
from headbayes.datasets.datacopy import FILE_KEYS
from headbayes.models import leaf_shapes, model_sizes, sampled_paths

ADVICE = {"kept draws": "keep fewer draws (sampler.keep) or chains (sampler.num_chains), or "
                        "sample fewer leaves (mask.include)",
          "model": "use a smaller model (model.width, model.depth)",
          "VI draws per step": "use fewer sampler.num_mc_samples",
          "Hessian start": "start the mass matrix from the identity (sampler.mass_init="
                           "identity) or sample fewer leaves (mask.include)",
          "data": "use fewer rows (data.n_train, data.n_test) or a smaller file",
          "report's function draws": "keep fewer draws (sampler.keep, sampler.num_chains) or "
                                     "evaluate fewer points (data.eval_step, data.n_test)",
          "exact reference": "use fewer training rows (data.n_train) or sample fewer leaves "
                             "(mask.include)"}

__all__ = ["check_seeds_and_counts", "check_memory", "check_run_memory", "check_report_memory",
           "memory_estimate"]

INT32_MAX = 2**31 - 1
SEED_LIMIT = 2**32


def check_seeds_and_counts(cfg) -> None:
    """Every `seed` key in [0, 2³²); the loop's step and draw counts below 2³¹."""
    for key, value in _seeds(cfg):
        require(isinstance(value, int) and 0 <= value < SEED_LIMIT, key, value,
                "an integer in [0, 2**32) (a 32-bit seed)")
    s = cfg.sampler
    steps = s.warmup + s.keep * s.thin
    require(steps <= INT32_MAX, "sampler.keep", s.keep,
            f"such that warmup + keep x thin <= {INT32_MAX} steps (got {steps})")
    for key in ("num_mc_samples", "num_integration_steps"):
        value = getattr(s, key, None)
        if value is not None:
            require(value <= 2**20, f"sampler.{key}", value, "an integer <= 1048576")


def _seeds(options, prefix: str = ""):
    for field in dataclasses.fields(options):
        value = getattr(options, field.name)
        key = f"{prefix}{field.name}"
        if dataclasses.is_dataclass(value):
            yield from _seeds(value, key + ".")
        elif field.name == "seed" or field.name.endswith("_seed"):
            yield key, value


def memory_estimate(cfg, shapes: dict, sampled: list) -> dict:
    """{part: bytes} of the estimate above, for leaf `shapes` and the `sampled` paths."""
    s = cfg.sampler
    sampled_size = sum(math.prod(shapes[p]) for p in sampled)
    model_size = sum(math.prod(shape) for shape in shapes.values())
    parts = {"kept draws": 12 * s.keep * s.num_chains * sampled_size,
             "model": 16 * model_size,
             "VI draws per step": 12 * getattr(s, "num_mc_samples", 0) * sampled_size
             * s.num_chains,
             "Hessian start": (12 * s.num_chains * sampled_size**2
                               if getattr(s, "mass_init", "identity") == "hessian" else 0)}
    rows = sum(getattr(cfg.data, key, 0) or 0 for key in ("n_train", "n_test", "n_ood"))
    files = sum(_file_size(getattr(cfg.data, key, "")) for key in FILE_KEYS)
    parts["data"] = 16 * rows * sum(data_sizes(cfg.data)) + 4 * files
    return parts


def _file_size(path: str) -> int:
    try:
        return os.stat(os.path.expanduser(path)).st_size if path else 0
    except OSError:
        return 0


READING = ("kept draws", "model", "data")  # what reading a finished run holds


def check_run_memory(cfg, reading: bool = False) -> None:
    """`check_memory` on the model's shapes (traced, nothing allocated); `reading`: only the
    parts a report or prediction holds (READING), not the sampler's."""
    check_memory(cfg, leaf_shapes(cfg), sampled_paths(cfg), parts=READING if reading else None)


def check_report_memory(cfg, data, sampled: list, available: int | None = None) -> None:
    """ConfigError (exit 2) when the report on `data` (its rows now known) would need more
    than the available memory: the function draws at every report point (float32: a lower
    bound, as the run's estimate is) and, where the exact reference applies, its Jacobians
    over the training rows (float64, 3 copies). Checked before sampling, and
    before a received run's report."""
    s = cfg.sampler
    shapes = leaf_shapes(cfg)
    sampled_size = sum(math.prod(shapes[p]) for p in sampled if p in shapes)
    parts = {"report's function draws": 4 * s.keep * s.num_chains * len(report_points(data))
             * model_sizes(cfg)[1],
             "exact reference": (24 * len(data.x_train) * sampled_size
                                 if not_applicable_reason(cfg, sampled) is None else 0)}
    _refuse_above(parts, available_memory() if available is None else available)


def check_memory(cfg, shapes: dict, sampled: list, available: int | None = None,
                 parts: tuple | None = None) -> None:
    """ConfigError (exit 2) when the estimate exceeds the available memory."""
    available = available_memory() if available is None else available
    estimate = memory_estimate(cfg, shapes, sampled)
    _refuse_above({k: v for k, v in estimate.items() if parts is None or k in parts}, available)


def _refuse_above(parts: dict, available: int | None) -> None:
    if available is None:
        return
    total = sum(parts.values())
    if total > available:
        largest = max(parts, key=parts.get)
        raise ConfigError(f"this run needs at least {total / 2**30:.1f} GiB of memory, more "
                          f"than the {available / 2**30:.1f} GiB available; the largest part, "
                          f"{parts[largest] / 2**30:.1f} GiB, is the {largest}: "
                          f"{ADVICE[largest]}")
