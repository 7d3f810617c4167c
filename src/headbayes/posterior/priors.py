"""Prior registry: the prior over the sampled leaves, a family, a scale and a centre per leaf.

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

Each family is an entry of `PRIORS`, named by `prior.family`: its schema (`PriorOptions`' keys
and its own), its builder `options -> log_density(z)` (the sum over the numbers of z of its
density above) and `check(options, where)`, the range checks of its keys but `sigma` (`where`:
`prior`, or a group's `mask.groups.NAME.prior`, checked while the config is typed, before there
is a run config). Capability `gaussian`: the density is −z²/2, s the sd (the exact reference and
learned scales need it). A new family is one entry plus its configs/prior/NAME.yaml.
"""

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

from headbayes.core.checks import check_scale, choice, positive_float
from headbayes.core.errors import ConfigError
from headbayes.core.registry import Registry
from headbayes.models.mask import group_owners, leaf_path

__all__ = ["PRIORS", "PriorOptions", "StudentTOptions", "SCALES", "CENTERS", "LeafPrior",
           "leaf_priors", "is_gaussian", "is_plain", "is_plain_config", "make_log_prior",
           "fan_in", "with_overrides", "group_prior", "prior_arrays"]

PRIORS = Registry("prior", key="family")
SCALES = ("fixed", "fan_in")
CENTERS = ("zero", "initial")


@dataclass
class PriorOptions:
    """The keys every family has (all of `gaussian`'s and `laplace`'s)."""
    family: str = "gaussian"
    sigma: Any = 10.0  # the scale: a number > 0, or `evidence` (analysis.hyperparameters)
    scale: str = "fixed"  # fixed: sigma for every leaf; fan_in: sigma / sqrt(fan-in)
    center: str = "zero"  # zero | initial (the leaf's values in params.npz)


@dataclass
class StudentTOptions(PriorOptions):
    family: str = "student_t"
    df: float = 3.0  # degrees of freedom ν


class LeafPrior(NamedTuple):
    options: Any  # the leaf's prior: its family's schema, its group's keys put in
    sigma: float | None  # None: the run's prior.sigma (Problem.prior_sigma: swept or learned)
    factor: float  # s = factor * sigma (1, or 1/sqrt(fan_in))
    centered: bool  # centre at the leaf's initial value (else 0)


def _check(options, where: str = "prior") -> None:
    choice(f"{where}.scale", options.scale, SCALES)
    choice(f"{where}.center", options.center, CENTERS)


def _check_student_t(options, where: str = "prior") -> None:
    _check(options, where)
    positive_float(f"{where}.df", options.df)


@PRIORS.register("gaussian", PriorOptions, check=_check, caps={"gaussian"})
def make_gaussian(options: PriorOptions) -> Callable:
    import jax.numpy as jnp

    return lambda z: -0.5 * jnp.sum(z**2)


@PRIORS.register("laplace", PriorOptions, check=_check)
def make_laplace(options: PriorOptions) -> Callable:
    import jax.numpy as jnp

    return lambda z: -jnp.sum(jnp.abs(z))


@PRIORS.register("student_t", StudentTOptions, check=_check_student_t)
def make_student_t(options: StudentTOptions) -> Callable:
    import jax.numpy as jnp

    df = float(options.df)
    return lambda z: -0.5 * (df + 1) * jnp.sum(jnp.log1p(z**2 / df))


def is_gaussian(options) -> bool:
    return "gaussian" in PRIORS.entry(options).caps


def with_overrides(run_prior, overrides: dict):
    """The run's prior with a group's `overrides` put in, as the group's family's schema (the
    overrides' `family`, else the run's): each of its keys from `overrides`, else the run's
    prior, else the family's default (a run's key the family lacks, e.g. `df`, is left out)."""
    values = {**dataclasses.asdict(run_prior), **overrides}
    entry = PRIORS[values["family"]]
    return entry.schema(**{k: v for k, v in values.items() if k in entry.keys()})


def group_prior(run_prior, overrides: dict, where: str, strict: bool = True) -> dict:
    """A group's `prior` keys, checked against the run's prior they override (`where` names
    them in errors); returned as given. A key the group's family does not have is refused
    (`strict`) or dropped (a saved run's config)."""
    if not isinstance(overrides, dict):
        raise ConfigError(f"`{where}` must be a mapping of prior keys, got {overrides!r}")
    family = overrides.get("family", run_prior.family)
    known = isinstance(family, str) and family in PRIORS
    keys = PRIORS[family].keys() if known else PRIORS.all_keys()
    unknown = [k for k in overrides if k not in keys]
    if unknown and strict:
        raise ConfigError(f"`{where}` has no key {', '.join(unknown)}; its keys: "
                          f"{', '.join(keys)}")
    overrides = {k: v for k, v in overrides.items() if k in keys}
    if "sigma" in overrides:
        check_scale(f"{where}.sigma", overrides["sigma"])
        if isinstance(overrides["sigma"], str):
            raise ConfigError(f"`{where}.sigma` must be a number (only the run's prior.sigma "
                              f"can be learned), got {overrides['sigma']!r}")
    choice(f"{where}.family", family, PRIORS.names())
    entry = PRIORS[family]
    if entry.check is not None:
        entry.check(with_overrides(run_prior, overrides), where)
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
    owner = group_owners(cfg.mask, list(shapes))
    result = {}
    for path in sampled:
        overrides = cfg.mask.groups[owner[path]].prior if path in owner else {}
        prior = with_overrides(cfg.prior, overrides)
        own_sigma = "sigma" in overrides
        factor = 1 / math.sqrt(fan_in(path, shapes)) if prior.scale == "fan_in" else 1.0
        result[path] = LeafPrior(prior, float(prior.sigma) if own_sigma else None, factor,
                                 prior.center == "initial")
    return result


def is_plain_config(cfg) -> bool:
    """The run's prior keys are the plain prior's (gaussian, scale fixed, centre zero) and no
    group sets its own: decided from the config alone, before the model's shapes are known."""
    prior = cfg.prior
    return (is_gaussian(prior) and (prior.scale, prior.center) == ("fixed", "zero")
            and not any(group.prior for group in cfg.mask.groups.values()))


def is_plain(leaves: dict) -> bool:
    """Every leaf Gaussian, centred at 0, with the run's prior.sigma: −‖θ‖²/(2σ²)."""
    return all(is_gaussian(p.options) and (p.sigma, p.factor, p.centered) == (None, 1.0, False)
               for p in leaves.values())


def prior_arrays(leaves: dict, params: dict, sigma: float) -> tuple:
    """(centres, sds) per sampled number, in the order of `leaves`' paths, float64: what a
    Gaussian prior means for the exact reference (ConfigError for other families)."""
    import numpy as np

    centres, sds = [], []
    for path, prior in leaves.items():
        if not is_gaussian(prior.options):
            raise ConfigError("the exact reference needs a Gaussian prior")
        size = int(np.size(params[path]))
        value = np.asarray(params[path], np.float64).reshape(-1)
        centres.append(value if prior.centered else np.zeros(size))
        scale = prior.factor * (sigma if prior.sigma is None else prior.sigma)
        sds.append(np.full(size, scale))
    return np.concatenate(centres), np.concatenate(sds)


def make_log_prior(leaves: dict) -> Callable:
    """`log_prior(position, problem)`: the sum over the leaves present in `position` (a
    Gibbs group's conditional holds only its own) of their prior; scales are constants or
    `problem.prior_sigma`, centres `problem.prior_center` ({path: initial value})."""
    import jax

    densities = {path: PRIORS.entry(prior.options).build(prior.options)
                 for path, prior in leaves.items()}

    def log_prior(position, problem):
        total = 0.0
        for key_path, leaf in jax.tree_util.tree_flatten_with_path(position)[0]:
            path = leaf_path(key_path)
            prior = leaves[path]
            sigma = problem.prior_sigma if prior.sigma is None else prior.sigma
            centre = problem.prior_center[path] if prior.centered else 0.0
            total = total + densities[path]((leaf - centre) / (prior.factor * sigma))
        return total

    return log_prior
