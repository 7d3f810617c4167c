"""The prior over the sampled leaves: a family, a scale and a centre per leaf.

Each sampled number θ of a leaf has the prior density, up to a constant, of z = (θ − c) / s:
- `gaussian`: −z²/2 (s is the sd);
- `laplace`: −|z| (s is the scale b; the sd is √2·s);
- `student_t`: −(ν+1)/2 · log(1 + z²/ν), ν = `prior.df` (s is the scale; heavier tails).
The scale s is `prior.sigma`, or with `prior.scale=fan_in` `prior.sigma / √fan_in`, fan_in the
number of inputs of the leaf's layer: a weight of shape (out, *in) has prod(in); a bias, that
of its layer's `weight` (1 without one). The centre c is 0 (`prior.center=zero`) or the leaf's
initial value (`initial`: the values in params.npz, so with `body=pretrained` the pretrained
weights, as NeuroBayes and laplace-torch centre theirs). A group of `mask.groups` may set its
own `prior` keys; the others come from the run's `prior`. Frozen leaves have no prior (they are
constants). Pretraining (`body=pretrained`) keeps the Gaussian prior of scale `prior.sigma`.
"""

import dataclasses
import math
from typing import Callable, NamedTuple

from headbayes.core.checks import choice, positive_float
from headbayes.core.errors import ConfigError

__all__ = ["FAMILIES", "SCALES", "CENTERS", "LeafPrior", "leaf_priors", "is_plain",
           "is_plain_config", "make_log_prior", "fan_in", "group_prior", "check_prior",
           "prior_arrays"]

FAMILIES = ("gaussian", "laplace", "student_t")
SCALES = ("fixed", "fan_in")
CENTERS = ("zero", "initial")


class LeafPrior(NamedTuple):
    family: str
    df: float
    sigma: float | None  # None: the run's prior.sigma (Problem.prior_sigma: swept or learned)
    factor: float  # s = factor * sigma (1, or 1/sqrt(fan_in))
    centered: bool  # centre at the leaf's initial value (else 0)


def check_prior(prior, where: str = "prior") -> None:
    """Range checks of a PriorConfig's keys other than `sigma` (checked with the scales)."""
    choice(f"{where}.family", prior.family, FAMILIES)
    choice(f"{where}.scale", prior.scale, SCALES)
    choice(f"{where}.center", prior.center, CENTERS)
    positive_float(f"{where}.df", prior.df)


def group_prior(run_prior, overrides: dict, where: str) -> dict:
    """A group's `prior` keys, checked against the run's PriorConfig they override (`where`
    names them in errors); returned as given."""
    if not isinstance(overrides, dict):
        raise ConfigError(f"`{where}` must be a mapping of prior keys, got {overrides!r}")
    keys = [f.name for f in dataclasses.fields(run_prior)]
    unknown = [k for k in overrides if k not in keys]
    if unknown:
        raise ConfigError(f"`{where}` has no key {', '.join(unknown)}; its keys: "
                          f"{', '.join(keys)}")
    prior = dataclasses.replace(run_prior, **overrides)
    if "sigma" in overrides:
        from headbayes.core.checks import check_scale

        check_scale(f"{where}.sigma", prior.sigma)
        if isinstance(prior.sigma, str):
            raise ConfigError(f"`{where}.sigma` must be a number (only the run's prior.sigma "
                              f"can be learned), got {prior.sigma!r}")
    check_prior(prior, where)
    return dict(overrides)


def fan_in(path: str, shapes: dict) -> int:
    """Inputs of the layer of leaf `path` (see the module docstring)."""
    shape = shapes[path]
    if path.endswith(".bias"):
        weight = path[: -len("bias")] + "weight"
        return fan_in(weight, shapes) if weight in shapes else 1
    return math.prod(shape[1:]) if len(shape) >= 2 else 1


def leaf_priors(cfg, shapes: dict, sampled: list) -> dict:
    """{sampled path: LeafPrior} of the run (its groups' own priors included)."""
    from headbayes.models.mask import group_owners

    owner = group_owners(cfg.mask, list(shapes))
    result = {}
    for path in sampled:
        overrides = cfg.mask.groups[owner[path]].prior if path in owner else {}
        prior = dataclasses.replace(cfg.prior, **overrides)
        own_sigma = "sigma" in overrides
        factor = 1 / math.sqrt(fan_in(path, shapes)) if prior.scale == "fan_in" else 1.0
        result[path] = LeafPrior(prior.family, float(prior.df),
                                 float(prior.sigma) if own_sigma else None, factor,
                                 prior.center == "initial")
    return result


def is_plain_config(cfg) -> bool:
    """The run's prior keys are the plain prior's (gaussian, scale fixed, centre zero) and no
    group sets its own: decided from the config alone, before the model's shapes are known."""
    prior = cfg.prior
    return ((prior.family, prior.scale, prior.center) == ("gaussian", "fixed", "zero")
            and not any(group.prior for group in cfg.mask.groups.values()))


def is_plain(leaves: dict) -> bool:
    """Every leaf Gaussian, centred at 0, with the run's prior.sigma: −‖θ‖²/(2σ²)."""
    return all(p == LeafPrior("gaussian", p.df, None, 1.0, False) for p in leaves.values())


def prior_arrays(leaves: dict, params: dict, sigma: float) -> tuple:
    """(centres, sds) per sampled number, in the order of `leaves`' paths, float64: what a
    Gaussian prior means for the exact reference (ConfigError for other families)."""
    import numpy as np

    centres, sds = [], []
    for path, prior in leaves.items():
        if prior.family != "gaussian":
            raise ConfigError("the exact reference needs a Gaussian prior")
        size = int(np.size(params[path]))
        value = np.asarray(params[path], np.float64).reshape(-1)
        centres.append(value if prior.centered else np.zeros(size))
        scale = prior.factor * (sigma if prior.sigma is None else prior.sigma)
        sds.append(np.full(size, scale))
    return np.concatenate(centres), np.concatenate(sds)


def _log_density(family: str, df: float, z):
    import jax.numpy as jnp

    if family == "gaussian":
        return -0.5 * jnp.sum(z**2)
    if family == "laplace":
        return -jnp.sum(jnp.abs(z))
    return -0.5 * (df + 1) * jnp.sum(jnp.log1p(z**2 / df))


def make_log_prior(leaves: dict) -> Callable:
    """`log_prior(position, problem)`: the sum over the leaves present in `position` (a
    Gibbs group's conditional holds only its own) of their prior; scales are constants or
    `problem.prior_sigma`, centres `problem.prior_center` ({path: initial value})."""
    import jax

    from headbayes.models.mask import leaf_path

    def log_prior(position, problem):
        total = 0.0
        for key_path, leaf in jax.tree_util.tree_flatten_with_path(position)[0]:
            path = leaf_path(key_path)
            prior = leaves[path]
            sigma = problem.prior_sigma if prior.sigma is None else prior.sigma
            centre = problem.prior_center[path] if prior.centered else 0.0
            total = total + _log_density(prior.family, prior.df,
                                         (leaf - centre) / (prior.factor * sigma))
        return total

    return log_prior
