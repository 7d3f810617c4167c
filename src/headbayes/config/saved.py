"""The config a run directory was sampled with: typed, checked, with its own data copies and
learned scales put in. A received directory's config never chooses code to run
(`models.code.check_saved_target`)."""

import dataclasses
import os

from headbayes.analysis.hyperparameters import checked_values, with_values
from headbayes.config.budget import check_run_memory
from headbayes.config.typed import typed, validate
from headbayes.core.errors import ConfigError, RunDirError
from headbayes.core.rundir import RunFiles
from headbayes.core.schema import RunConfig
from headbayes.datasets.datacopy import with_copies
from headbayes.models import TargetModel
from headbayes.models.code import check_saved_target, guard_run_directory
from headbayes.posterior.operators import is_builtin
from headbayes.models.given import is_given, receive, require_given

__all__ = ["load_config", "with_own_data", "saved_target"]


SECTIONS = tuple(f.name for f in dataclasses.fields(RunConfig) if f.name != "seed")


def load_config(files: RunFiles, learned: bool = False, own_data: bool = True,
                code: tuple = (), own: bool = False, model=None):
    """The typed config the run sampled with: run_config.json, else .hydra/config.yaml;
    with `learned`, the scales of hyperparameters.json put in for learned ones; with
    `own_data`, data files read from the run's checked copies (`headbayes.datasets.datacopy`)
    rather than the paths as typed. `code`: the folders the user vouches for
    (`models.code.vouched_folders`), where a saved `model._target_` may be imported from;
    `own`: the config this process sampled with (its model is the one it imported);
    `model`: the equinox object a run of `headbayes.fit` was given, passed back in
    (`models.given.receive`)."""
    cfg, path = _saved_config(files, code, own)
    cfg = _with_given_model(cfg, model)
    if own_data:
        cfg = with_own_data(files, cfg)
    if learned and files.has(files.HYPERPARAMETERS):
        scales = files.path(files.HYPERPARAMETERS)
        try:
            cfg = with_values(cfg, checked_values(files.read_json(files.HYPERPARAMETERS), scales))
        except KeyError as e:  # a classifier's file under a config with a noise scale
            raise RunDirError(f"corrupt file {scales}: it lacks {e}, which the config's "
                              f"likelihood '{cfg.likelihood.name}' needs") from None
    elif learned and any(isinstance(getattr(section, "sigma", None), str)
                         and section.sigma != "sampled" for section in (cfg.likelihood, cfg.prior)):
        raise RunDirError(f"missing file {files.path(files.HYPERPARAMETERS)}: the run learns "
                          f"its scales (likelihood.sigma={cfg.likelihood.sigma}, "
                          f"prior.sigma={cfg.prior.sigma}) and keeps them there")
    try:  # a run directory's config passes the checks of `run` before anything is built
        validate(cfg)
    except ConfigError as e:
        raise RunDirError(f"{path}: {e}") from None
    try:
        check_run_memory(cfg, reading=True)
    except ConfigError as e:  # this machine's memory, not the directory, is the limit
        raise ConfigError(f"{path}: {e}") from None
    return cfg


def _with_given_model(cfg, model):
    """`cfg` with `model` as its given model; ConfigError when the run's model is not an
    object given to `headbayes.fit`, or is one that this process does not hold."""
    if not is_given(cfg.model):
        if model is not None:
            raise ConfigError(f"model=: this run builds its model from its config "
                              f"({cfg.model.name}); model= is for runs of headbayes.fit")
        return cfg
    if model is None:
        require_given(cfg.model)
        return cfg
    return dataclasses.replace(cfg, model=receive(cfg.model, model))


def saved_target(files: RunFiles) -> str | None:
    """The `model._target_` a run directory's config names (None: a built-in model), read
    without typing the config or importing anything."""
    name = files.CONFIG if files.has(files.CONFIG) else files.HYDRA_CONFIG
    saved = files.read_json(name) if name == files.CONFIG else files.read_yaml(name) or {}
    model = saved.get("model") if isinstance(saved, dict) else None
    target = model.get("_target_") if isinstance(model, dict) else None
    if target is not None and not isinstance(target, str):
        raise RunDirError(f"corrupt file {files.path(name)}: model._target_ must be a string")
    return target


def _refuse_interpolations(value, path, key: str = "") -> None:
    """RunDirError for a `${...}` in a saved config's strings: OmegaConf would resolve it
    (`${oc.env:NAME}` reads the environment), and headbayes saves resolved values; and for a
    `_target_` anywhere but `model._target_` (a string)."""
    if isinstance(value, dict):
        for k, v in value.items():
            inner = f"{key}.{k}" if key else str(k)
            if k == "_target_" and (inner != "model._target_" or not isinstance(v, str)):
                raise RunDirError(f"corrupt file {path}: {inner} " + (
                    "must be a string" if inner == "model._target_" else
                    "is not a key headbayes saves (only model._target_ names code)"))
            _refuse_interpolations(v, path, inner)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _refuse_interpolations(v, path, f"{key}[{i}]")
    elif isinstance(value, str) and "${" in value:
        raise RunDirError(f"corrupt file {path}: {key} holds an interpolation ({value[:60]!r}); "
                          f"a saved config holds resolved values only")


def with_own_data(files: RunFiles, cfg):
    """`cfg` reading the run's copies of its data files, when data.json lists any."""
    records = files.read_json(files.DATA).get("files", {}) if files.has(files.DATA) else {}
    return with_copies(files, cfg, records)


def _saved_config(files: RunFiles, code: tuple, own: bool = False):
    guard_run_directory(files.root)  # nothing is imported from it in this process from now on
    import yaml
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    path = files.path(files.CONFIG)
    if not os.path.lexists(path):  # a link is not skipped: reading it is refused
        path = files.path(files.HYDRA_CONFIG)
    if not os.path.lexists(path):
        raise RunDirError(f"missing file {path} (is {files.root} a headbayes run directory?)")
    name = str(path.relative_to(files.root))
    saved = files.read_json(name) if path.suffix == ".json" else files.read_yaml(name) or {}
    if not isinstance(saved, dict):
        raise RunDirError(f"corrupt file {path}: expected a mapping of config sections")
    odd = next((k for k, v in saved.items() if k in SECTIONS and not isinstance(v, dict)), None)
    if odd is not None:  # `"model": "evil.make"` reached a registry as a string
        raise RunDirError(f"corrupt file {path}: section {odd} must be a mapping of keys")
    _refuse_interpolations(saved, path)
    try:
        merged = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(RunConfig), saved))
        cfg = typed(merged, strict=False)
    except (OmegaConfBaseException, ValueError, yaml.YAMLError) as e:
        raise RunDirError(f"corrupt file {path}: {e}") from None
    if isinstance(cfg.model, TargetModel) and not own:
        recorded = (files.read_json(files.MODEL_SOURCE) if files.has(files.MODEL_SOURCE)
                    else None)
        check_saved_target(cfg.model._target_, path, files.root,
                           recorded if isinstance(recorded, dict) else None, code)
    functions = user_functions(cfg) if not own else []  # a physics run's operator, solution
    if functions:
        record = files.read_json(files.MODEL_SOURCE) if files.has(files.MODEL_SOURCE) else {}
        records = record.get("functions") if isinstance(record, dict) else None
        for key, name in functions:
            recorded = records.get(key) if isinstance(records, dict) else None
            check_saved_target(name, path, files.root,
                               recorded if isinstance(recorded, dict) else None, code, key=key)
    return cfg, path


def user_functions(cfg) -> list[tuple[str, str]]:
    """(config key, module.function) of every user function a config names besides the model:
    a pde dataset's operator and solution, a physics likelihood's operator."""
    named = [("data.operator", getattr(cfg.data, "operator", None)),
             ("data.solution", getattr(cfg.data, "solution", None)),
             ("likelihood.operator", getattr(cfg.likelihood, "operator", None))]
    return [(key, name) for key, name in named
            if isinstance(name, str) and not is_builtin(name)]
