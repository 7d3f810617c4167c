"""Range checks for config values: each raises ConfigError naming the key, the value and what
is allowed (`` `sampler.step_size` must be a finite number > 0, got -1 ``)."""

import math

from headbayes.core.errors import ConfigError

__all__ = ["require", "positive_float", "nonnegative_float", "choice", "at_least", "LEARNED",
           "is_learned", "check_scale", "check_bool"]


def require(ok: bool, key: str, value, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"`{key}` must be {allowed}, got {value!r}")


FLOAT_MAX = 1e30  # a setting's largest magnitude: sums and squares stay float32 numbers
FLOAT_MIN = 1e-30  # a positive setting's smallest: float32 holds it (1e-46 would be 0)


def positive_float(key: str, value) -> None:
    require(math.isfinite(value) and value > 0, key, value, "a finite number > 0")
    require(FLOAT_MIN <= value <= FLOAT_MAX, key, value,
            f"in [{FLOAT_MIN:g}, {FLOAT_MAX:g}] (the chains are float32)")


def nonnegative_float(key: str, value) -> None:
    require(math.isfinite(value) and value >= 0, key, value, "a finite number >= 0")
    require(value <= FLOAT_MAX, key, value, f"at most {FLOAT_MAX:g} (the chains are float32)")


def check_bool(key: str, value) -> None:
    """true or false only: OmegaConf would take 2 or "0" for a bool field."""
    require(isinstance(value, bool), key, value, "true or false")


def choice(key: str, value, allowed) -> None:
    require(value in allowed, key, value, "one of " + ", ".join(allowed))


def at_least(key: str, value, low: int) -> None:
    require(value >= low, key, value, f"an integer >= {low}")


LEARNED = ("evidence", "validation")  # `validation`: likelihood.sigma only


def is_learned(value) -> bool:
    return isinstance(value, str)


SCALE_RANGE = (FLOAT_MIN, FLOAT_MAX)  # a scale whose square (a variance) stays float32


def check_scale(key: str, value, sampled_ok: bool = False) -> None:
    """`value` is a finite number > 0 or one of LEARNED (or `sampled`, where `sampled_ok`)."""
    allowed = LEARNED + (("sampled",) if sampled_ok else ())
    if is_learned(value):
        if value not in allowed:
            raise ConfigError(f"`{key}` must be a number > 0 or one of {', '.join(allowed)}, "
                              f"got {value!r}")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not (math.isfinite(value) and SCALE_RANGE[0] <= value <= SCALE_RANGE[1]):
        raise ConfigError(f"`{key}` must be a number in [{SCALE_RANGE[0]:g}, "
                          f"{SCALE_RANGE[1]:g}] (its square must stay finite) or one of "
                          f"{', '.join(allowed)}, got {value!r}")
