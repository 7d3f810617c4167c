"""The run's config: a typed schema for Hydra, and its conversion to each option's own schema.

Hydra composes `RunConfig` (registered as `base_config`); the groups whose keys depend on the
chosen option (`data`, `model`, `likelihood`, `prior`, `sampler`) are open dicts there. `typed`
turns each into the schema of its registry entry, so a key the chosen option does not have is
refused (`sampler 'sgld' has no key sampler.friction; its keys: ...`). Only
`cli.py`/`app.py`/`api.py` see Hydra objects; everything else takes a typed `RunConfig`.
"""

import dataclasses
import difflib
import importlib.util
import re

from headbayes.analysis.hyperparameters import check_learnable
from headbayes.config.budget import check_seeds_and_counts
from headbayes.core.checks import (at_least, check_bool, check_scale, choice, nonnegative_float,
                                   positive_float, require)
from headbayes.core.errors import ConfigError
from headbayes.core.schema import (AdapterConfig, BodyConfig, GroupConfig, MaskConfig,
                                   ReportConfig, RunConfig, TrackingConfig)
from headbayes.datasets import DATASETS, data_sizes
from headbayes.datasets.datacopy import FILE_KEYS
from headbayes.models import MODELS, model_entry, model_options
from headbayes.models.bodies import BODIES, body_entry, modes_with
from headbayes.posterior.likelihoods import LIKELIHOODS
from headbayes.posterior.priors import PRIORS, group_prior
from headbayes.samplers import SAMPLERS
from headbayes.samplers.base import SHARED_KEYS

__all__ = ["MaskConfig", "GroupConfig", "TrackingConfig", "AdapterConfig",
           "BodyConfig", "ReportConfig", "RunConfig", "CONFIG_GROUPS", "OPTION_GROUPS",
           "registry", "typed", "validate", "check_key", "register_schema", "flat_values",
           "differences"]


OPTION_GROUPS = ("data", "model", "likelihood", "prior", "sampler")
CONFIG_GROUPS = ("data", "model", "body", "mask", "likelihood", "prior", "sampler", "experiment",
                 "sweep", "launcher", "tracking")
BODY_OPTIMIZERS = ("adam", "sgd")
# dict-valued keys whose entries the user names: `+KEY.NAME=V` adds one, `~KEY.NAME` drops one
DICT_KEYS = ("data.coefficients", "likelihood.coefficients", "likelihood.unknown")


def registry(group: str):
    """The Registry of an option group."""
    return {"data": DATASETS, "model": MODELS, "likelihood": LIKELIHOODS, "prior": PRIORS,
            "sampler": SAMPLERS}[group]


def typed(cfg: RunConfig, strict: bool = True) -> RunConfig:
    """`cfg` with each option group converted to its entry's schema (see `Registry.typed`);
    a model config with `_target_` becomes a `models.TargetModel`."""

    groups = {}
    for group in OPTION_GROUPS:
        values = getattr(cfg, group)
        if not strict and group == "likelihood" and "name" not in values:
            values = {"name": "gaussian", **values}  # saved before likelihoods had names
        if not strict and group == "prior" and "family" not in values:
            values = {"family": "gaussian", **values}  # saved before priors had families
        groups[group] = (model_options(values, strict) if group == "model"
                         else registry(group).typed(values, strict))
    mask = dataclasses.replace(cfg.mask, groups=_typed_groups(cfg.mask.groups, groups["sampler"],
                                                              groups["prior"], strict))
    body = cfg.body
    if body.data:
        try:
            body = dataclasses.replace(body, data=registry("data").typed(body.data, strict))
        except ConfigError as e:
            raise ConfigError(f"in body.data: {e}") from None
    return dataclasses.replace(cfg, mask=mask, body=body, **groups)


def _typed_groups(groups: dict, shared, prior, strict: bool) -> dict:
    """`mask.groups` as {name: GroupConfig} with each group's sampler in its option's schema
    and the keys every sampler has (warmup, keep, thin, chains, start jitter, temperature)
    taken from the run's `sampler` (`shared`); a group setting one of them to another value
    is refused."""

    typed_groups = {}
    for name, group in (groups or {}).items():
        where = f"mask.groups.{name}"
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", str(name)):
            raise ConfigError(f"mask group names are letters, digits and _ (not first: a "
                              f"digit), at most 64; got {str(name)!r}")
        if dataclasses.is_dataclass(group):
            group = dataclasses.asdict(group)
        if not isinstance(group, dict):
            raise ConfigError(f"`{where}` must be a mapping with include, exclude and sampler, "
                              f"got {group!r}")
        unknown = set(group) - {"include", "exclude", "sampler", "prior"}
        if unknown:
            raise ConfigError(f"`{where}` has no key {', '.join(sorted(unknown))}; its keys: "
                              f"include, exclude, sampler, prior")
        own = group.get("sampler") or {}
        if not isinstance(own, dict):
            raise ConfigError(f"`{where}.sampler` must be a mapping with a sampler's name and "
                              f"keys, got {own!r}")
        own = dict(own)
        given = [k for k in SHARED_KEYS if k in own and own[k] != getattr(shared, k)]
        if given and strict:  # equal values: a saved run's config, written with them
            raise ConfigError(f"`{where}.sampler` sets {', '.join(given)}, which every group "
                              f"shares: set sampler.{given[0]} instead")
        try:
            options = registry("sampler").typed(own, strict)
        except ConfigError as e:
            raise ConfigError(f"in {where}: {e}") from None
        options = dataclasses.replace(options, **{k: getattr(shared, k) for k in SHARED_KEYS})
        typed_groups[str(name)] = GroupConfig(
            list(group.get("include") or []), list(group.get("exclude") or []), options,
            group_prior(prior, group.get("prior") or {}, f"{where}.prior", strict))
    return typed_groups


def register_schema() -> None:
    """Register `RunConfig` as `base_config` so Hydra type-checks every composition."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="base_config", node=RunConfig)


def _known_keys() -> list[str]:
    keys = ["seed"]
    for f in dataclasses.fields(RunConfig):
        if f.name in OPTION_GROUPS:
            keys += [f"{f.name}.{k}" for k in registry(f.name).all_keys()]
        elif dataclasses.is_dataclass(f.type):
            keys += [f"{f.name}.{g.name}" for g in dataclasses.fields(f.type)]
    return keys


def check_key(key: str) -> None:
    """Raise ConfigError if dotted `key` is no option's key (names the closest one). Any
    `model.*` key is accepted: a user's model factory takes keys of its own; so is any
    `mask.groups.*` key (group names are the user's), and so is a key inside a dict whose names
    are the user's (`DICT_KEYS`: a PDE's coefficients)."""
    keys = _known_keys()
    sections = {k.split(".")[0] for k in keys}
    if key in keys or key in sections or key.startswith(("model.", "mask.groups.", "body.data.",
                                                         *(k + "." for k in DICT_KEYS))):
        return  # a group's keys are checked when the config is typed (`_typed_groups`)
    group = difflib.get_close_matches(key, CONFIG_GROUPS, n=1, cutoff=0.6)
    if "." not in key and group:
        raise ConfigError(f"unknown config group '{key}'; did you mean '{group[0]}'? "
                          f"({group[0]}=NAME chooses an option, {group[0]}.KEY=VALUE sets one "
                          f"of its keys)")
    close = difflib.get_close_matches(key, keys, n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ConfigError(f"unknown config key '{key}'{hint} (valid keys: {', '.join(keys)})")


def flat_values(cfg: RunConfig) -> dict:
    """{dotted key: value} of every leaf of `cfg`."""
    def walk(node: dict, prefix: str):
        for key, value in node.items():
            if isinstance(value, dict):
                yield from walk(value, prefix + key + ".")
            else:
                yield prefix + key, value

    return dict(walk(dataclasses.asdict(cfg), ""))


def differences(saved: RunConfig, given: RunConfig) -> list[str]:
    """'key (saved S, given G)' for every key whose value differs; every key but `report.*`
    and `tracking.*` (what the report draws, where it is logged) shapes the chain."""
    old, new = flat_values(saved), flat_values(given)
    return [f"{key} (saved {old.get(key)!r}, given {new.get(key)!r})"
            for key in dict.fromkeys([*old, *new])
            if old.get(key) != new.get(key) and not key.startswith(("report.", "tracking."))]


def _check_pretraining_data(cfg: RunConfig) -> None:
    """`body.data`: only with body=pretrained, a generated dataset (files are the run's data
    only), with the inputs and targets of the run's data."""

    require("map" in body_entry(cfg).caps, "body.mode", cfg.body.mode,
            f"{' or '.join(modes_with('map'))} when body.data is set")
    if any(getattr(cfg.body.data, key, "") for key in (*FILE_KEYS, "root")):  # root: uci
        raise ConfigError("`body.data` takes a generated dataset (sin, sin_shift, gap, "
                          "friedman1, ...), not a file")
    entry = registry("data")[cfg.body.data.name]
    if entry.check is not None:
        try:
            entry.check(cfg.body.data, cfg)
        except ConfigError as e:
            raise ConfigError(f"in body.data: {e}") from None
    if data_sizes(cfg.body.data) != data_sizes(cfg.data):
        raise ConfigError(f"`body.data` must have the inputs and targets of the run's data "
                          f"{data_sizes(cfg.data)}, got {data_sizes(cfg.body.data)}")


def validate(cfg: RunConfig) -> RunConfig:
    """Range-check every value of a typed config; raise ConfigError naming key, value and what
    is allowed. Each option checks its own keys (its entry's `check`)."""

    for group in OPTION_GROUPS:
        if not dataclasses.is_dataclass(getattr(cfg, group)):
            raise ConfigError(f"`{group}` is not typed; call headbayes.config.typed.typed first")
    choice("body.mode", cfg.body.mode, BODIES.names())
    choice("body.optimizer", cfg.body.optimizer, BODY_OPTIMIZERS)
    positive_float("body.lr", cfg.body.lr)
    at_least("body.steps", cfg.body.steps, 1)
    at_least("body.patience", cfg.body.patience, 1)
    if cfg.body.weight_decay is not None:
        nonnegative_float("body.weight_decay", cfg.body.weight_decay)
    if cfg.body.data:
        _check_pretraining_data(cfg)
    check_scale("prior.sigma", cfg.prior.sigma)
    prior = registry("prior").entry(cfg.prior)
    if prior.check is not None:  # here, before the other groups' checks, as when it was fixed
        prior.check(cfg.prior)
    check_bool("report.plots", cfg.report.plots)
    at_least("adapters.rank", cfg.adapters.rank, 1)
    positive_float("adapters.alpha", cfg.adapters.alpha)
    require(len(cfg.mask.include) >= 1, "mask.include", list(cfg.mask.include),
            "a non-empty list of selectors")
    for group in OPTION_GROUPS:
        if group == "prior":
            continue  # checked above, with its scale
        options = getattr(cfg, group)
        entry = model_entry(options) if group == "model" else registry(group).entry(options)
        if entry.check is not None:
            entry.check(options, cfg)
    if cfg.mask.groups and "composite" not in registry("sampler")[cfg.sampler.name].caps:
        raise ConfigError(f"mask.groups gives each group its own sampler: it needs "
                          f"sampler=gibbs, got sampler={cfg.sampler.name}")
    check_tracking(cfg.tracking)
    check_learnable(cfg)
    check_seeds_and_counts(cfg)
    return cfg


TRACKING_BACKENDS = ("none", "mlflow")


def check_tracking(tracking) -> None:
    choice("tracking.backend", tracking.backend, TRACKING_BACKENDS)
    if tracking.backend == "mlflow" and importlib.util.find_spec("mlflow") is None:
        raise ConfigError("+tracking=mlflow needs the MLflow client: "
                          "pip install 'headbayes[mlflow]'")
