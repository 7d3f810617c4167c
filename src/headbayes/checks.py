"""Range checks for config values: each raises ConfigError naming the key, the value and what
is allowed (`` `sampler.step_size` must be a finite number > 0, got -1 ``)."""

import math

from headbayes.errors import ConfigError

__all__ = ["require", "positive_float", "nonnegative_float", "choice", "at_least"]


def require(ok: bool, key: str, value, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"`{key}` must be {allowed}, got {value!r}")


def positive_float(key: str, value) -> None:
    require(math.isfinite(value) and value > 0, key, value, "a finite number > 0")


def nonnegative_float(key: str, value) -> None:
    require(math.isfinite(value) and value >= 0, key, value, "a finite number >= 0")


def choice(key: str, value, allowed) -> None:
    require(value in allowed, key, value, "one of " + ", ".join(allowed))


def at_least(key: str, value, low: int) -> None:
    require(value >= low, key, value, f"an integer >= {low}")
