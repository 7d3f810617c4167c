"""Composition: Hydra overrides -> a typed, range-checked `RunConfig` whose mask selects
existing leaves. Errors are ConfigError (exit 2) with one line naming the key."""

import re
from pathlib import Path

from headbayes.config.typed import (CONFIG_GROUPS, OPTION_GROUPS, check_key, register_schema,
                                    registry, typed, validate)
from headbayes.core.errors import ConfigError
from headbayes.core.settings import settings
from headbayes.models import leaf_shapes, model_entry, model_options
from headbayes.models.mask import group_owners

__all__ = ["parse_overrides", "check_overrides", "compose_dict", "checked", "compose",
           "with_value", "compact", "to_run_config", "is_hydra_key", "PREFLIGHT"]

# Set by `headbayes run` (`cli.preflight`), read by its sweeper (`hydra_plugins.
# headbayes_sweeper`). Kept here: Hydra's plugin scan executes the plugin's module again, which
# would reset a flag kept there.
PREFLIGHT = {"checked_every_job": False}


def _debug_cause(error: Exception) -> Exception | None:
    """The original error when HEADBAYES_DEBUG is set (its traceback is then shown)."""
    return error if settings().debug else None


def to_run_config(cfg, strict: bool = True):
    """A composed DictConfig -> RunConfig with each option group in its own schema."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        plain = OmegaConf.to_object(cfg)
    except (OmegaConfBaseException, ValueError) as e:  # an interpolation, say: name its key
        key = getattr(e, "full_key", None)
        raise ConfigError((f"`{key}`: " if key else "") + str(e).splitlines()[0]) from None
    return typed(plain, strict)


def parse_overrides(args: list[str]) -> list:
    """Hydra's parse of the override arguments (flags such as -m are skipped)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    candidates = [a for a in args if ("=" in a or a.startswith("~")) and not a.startswith("-")]
    parser = OverridesParser.create()
    try:
        return parser.parse_overrides(candidates)
    except HydraException as e:
        if "LexerNoViableAltException" in str(e):  # a character the grammar has no token for
            for line in candidates:
                try:
                    parser.parse_overrides([line])
                except HydraException:
                    raise ConfigError(f"cannot parse the override {line!r}: an unquoted value "
                                      f"takes ASCII letters, digits and -+_./:@ only; quote "
                                      f"it: {_quoted(line)}") from _debug_cause(e)
        raise ConfigError(" ".join(str(e).split())) from _debug_cause(e)


def _quoted(line: str) -> str:
    """KEY=VALUE with the value quoted for Hydra: a list's elements one by one."""
    key, _, value = line.partition("=")
    if value.startswith("[") and value.endswith("]"):
        items = [item.strip().strip("'\"") for item in value[1:-1].split(",")]
        return f"{key}=[{','.join(repr(item) for item in items if item)}]"
    return f"{key}='{value}'"


def is_hydra_key(key: str) -> bool:
    return key.split(".")[0].split("/")[0] == "hydra"


def check_overrides(parsed: list) -> None:
    """Reject unknown keys (naming the closest one) before Hydra composes anything."""
    for override in parsed:
        key = override.key_or_group
        if not (is_hydra_key(key) or key in CONFIG_GROUPS or "/" in key):
            check_key(key)


def compact(message: str) -> str:
    """Hydra/OmegaConf error text on one line: the message, options and key, no search path."""
    lines = [ln.strip() for ln in message.split("Config search path")[0].splitlines()]
    keep = [ln for ln in lines if ln and not ln.startswith(("reference_type", "object_type"))]
    return " ".join(keep)


def compose_dict(overrides: list[str]):
    """Hydra's composition of `overrides` (no sweeps) -> DictConfig; errors as ConfigError."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    import yaml

    register_schema()  # the typed `base_config` that config.yaml starts from
    check_overrides(parse_overrides(overrides))
    check_experiment_headers(overrides)
    try:
        if GlobalHydra.instance().is_initialized():  # inside `headbayes run`'s Hydra task
            composed = compose("config", overrides=overrides)
        else:
            with initialize_config_module("headbayes.configs", version_base="1.3"):
                composed = compose("config", overrides=overrides)
        return with_chosen_model_keys(composed, overrides)
    except (HydraException, OmegaConfBaseException, ValueError) as e:
        message = compact(str(e.__cause__ or e))
        _raise_option_key_error(overrides, message)
        raise ConfigError(message) from _debug_cause(e)
    except yaml.YAMLError as e:  # a malformed config file: name it, with line and column
        mark = getattr(e, "problem_mark", None)
        where = f"{mark.name}, line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"malformed YAML in {where}: {getattr(e, 'problem', e)}") \
            from _debug_cause(e)


def _key(line: str) -> str:
    return line.lstrip("+~").partition("=")[0]


def with_chosen_model_keys(cfg, overrides: list[str]):
    """`cfg` with the model that `overrides` chose with `model=NAME`, when an experiment had
    chosen another one: that option's own keys and the overrides' `model.KEY`s only. An
    experiment's model keys were written for its model (`width: 50, depth: 1` of an MLP must
    neither break nor silently resize a user's network)."""
    from omegaconf import open_dict

    chosen = [line for line in overrides if _key(line) == "model"]
    if not chosen or not any(_key(line) == "experiment" for line in overrides):
        return cfg
    own = [line for line in overrides if _key(line).startswith("model.")]
    alone = compose_dict([chosen[-1], *own])
    written_for = compose_dict([line for line in overrides if line not in chosen + own])

    def identity(model) -> tuple:
        return model.get("_target_"), model.get("name")

    if identity(written_for.model) == identity(alone.model):
        return cfg  # the experiment's keys are this model's
    with open_dict(cfg):
        cfg.model = alone.model
    return cfg


def check_experiment_headers(overrides: list[str]) -> None:
    """A user's `+experiment=NAME` file (./configs/experiment/NAME.yaml) must start with the
    line `# @package _global_`: Hydra reads the header only up to the first line that is not
    a `# @` line, so a comment above it silently puts every key under `experiment.`."""
    for line in overrides:
        key, _, name = line.partition("=")
        if key.lstrip("+~") != "experiment" or not name:
            continue
        path = Path.cwd() / "configs" / "experiment" / f"{name}.yaml"
        try:
            lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
        except (OSError, UnicodeDecodeError):
            continue  # not a user's file here; Hydra looks further and reports
        header = []
        for text in lines:
            if not re.match(r"#\s*@", text):
                break
            header.append(text)
        if not any(re.fullmatch(r"#\s*@package\s+_global_", text) for text in header):
            raise ConfigError(f"{path}: an experiment file must start with the line "
                              f"`# @package _global_` (before any comment or key: Hydra reads "
                              f"the header only from the top of the file)")


def _raise_option_key_error(overrides: list[str], message: str) -> None:
    """When Hydra refused `GROUP.KEY=V` because the chosen option of an option group (or of a
    mask group's sampler) has no KEY, raise the error that names the option and its keys."""
    from omegaconf import OmegaConf

    for line in overrides:
        key, _, value = line.partition("=")
        group, _, name = key.partition(".")
        named = ("not in struct" in message
                 and re.search(rf"(?<![\w.]){re.escape(key)}(?![\w.])", message))
        if key.startswith("mask.groups.") and named:
            composed = compose_dict([o for o in overrides if o != line])
            OmegaConf.set_struct(composed, False)
            OmegaConf.update(composed, key, value, merge=True)
            to_run_config(composed)  # a group's sampler names its keys (config._typed_groups)
            continue
        if group not in OPTION_GROUPS or not name or not named:
            continue
        composed = compose_dict([o for o in overrides if o != line])
        values = {**OmegaConf.to_container(composed[group]), name: value}
        _raise_if_option_named_by_key(group, name, values, overrides)
        if group == "model":
            options = model_options(values)
            if model_entry(options).check is not None:
                model_entry(options).check(options, to_run_config(composed))
        else:
            registry(group).typed(values)


def _raise_if_option_named_by_key(group: str, name: str, values: dict,
                                  overrides: list[str]) -> None:
    """`prior.family=student_t prior.df=5`: naming the option by its key keeps the default
    option's config (which has no `df`); an option's keys come with its config group."""
    if group == "model":
        return
    options = registry(group)
    chosen = values.get(options.key)
    named_by_key = any(line.lstrip("+").partition("=")[0] == f"{group}.{options.key}"
                       for line in overrides)
    if named_by_key and chosen in options and name in options[chosen].keys():
        raise ConfigError(f"`{group}.{name}` is a key of {group} {chosen}: choose that option "
                          f"with the config group, `{group}={chosen}` (not "
                          f"`{group}.{options.key}={chosen}`), then set {group}.{name}")


def checked(cfg):
    """A composed DictConfig -> range-checked RunConfig whose mask selects existing leaves
    (and whose mask groups, if any, split the sampled ones)."""

    run_config = validate(to_run_config(cfg))
    group_owners(run_config.mask, list(leaf_shapes(run_config)))
    return run_config


def compose(overrides: list[str]):
    """Compose and range-check the config of `overrides` (no sweeps) -> RunConfig."""
    return checked(compose_dict(overrides))


def with_value(cfg, key: str, value):
    """A copy of the composed `cfg` with the plain `key` set to `value`, type-checked by the
    schema: what composing again would give, without composing again."""
    import copy

    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    variant = copy.deepcopy(cfg)
    try:
        OmegaConf.update(variant, key, value, merge=False)
    except (OmegaConfBaseException, ValueError) as e:
        raise ConfigError(compact(str(e))) from _debug_cause(e)
    return variant
