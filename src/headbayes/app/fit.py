"""`headbayes.fit`: a posterior from an equinox model object and arrays in memory (a notebook's
path). The options are the config's sections, checked by the same schemas as the YAML:

```python
post = headbayes.fit(net, x, y, sampler="nuts")         # the last layer of net sampled
post = headbayes.fit(net, frame, "price", experiment="tabular", mask=["layers.1"])
post.metrics["test_rmse"], post.predict(new)["mean"], post.draws("layers.1.weight")
post.report()                                           # figures and plots (inline in Jupyter)
post.save("runs/price")                                 # an ordinary run directory
headbayes.load_run("runs/price", model=net).predict(new)   # in another process
```

Conventions: `x` is (rows, inputs) (a 1-D `x` is one input), or a pandas DataFrame whose
columns are named; `y` is one value per row, or the name of a column of the frame. Text (or
bool) labels make a classifier (`likelihood="categorical"` unless given). A run works in a
private temporary folder, removed with the posterior object (or at exit); nothing is
written elsewhere (no compile cache, no outputs/) until `.save(dir)`.
"""

import base64
import contextlib
import html
import os
import re
import shutil
import tempfile
import weakref
from pathlib import Path

import numpy as np

from headbayes.app.api import RunDir
from headbayes.core.errors import ConfigError, HeadbayesError, RunDirError, SamplingError
from headbayes.core.rundir import RunFiles
from headbayes.core.settings import settings

__all__ = ["fit", "Posterior", "Report"]

SECTIONS = ("mask", "likelihood", "prior", "sampler", "body")
OPTION_KEY = {"likelihood": "name", "prior": "family", "sampler": "name", "body": "mode"}
DATA_KEYS_SET_BY_FIT = ("name", "path", "target", "classes", "test_path", "delimiter",
                        "header")


def fit(model, x, y=None, *, mask=None, likelihood=None, prior=None, sampler=None, body=None,
        experiment=None, x_test=None, y_test=None, progress=True, **options) -> "Posterior":
    """The posterior of `model` (an equinox Module; or a headbayes model name such as "mlp",
    or a dict of model keys) on `x`, `y`, sampled, reported on and returned as a `Posterior`.

    `mask`: the leaves to sample: a list of selectors (`["layers.2"]`), a mask option name
    ("head", "all", ...) or a dict of mask keys; default: the model's last stage (the last
    layer of an `equinox.nn.MLP`). `likelihood`, `prior`, `sampler`, `body`: an option name
    (`sampler="nuts"`) or a dict of the section's keys (`sampler={"name": "nuts",
    "num_chains": 4}`). `experiment`: a shipped or ./configs experiment to start from
    (`"tabular"`). `x_test`, `y_test`: held-out rows (default: `data.test_fraction` of the
    rows). `**options`: the config's other sections and keys (`seed=1`,
    `data={"val_fraction": 0.1}`, `report={"plots": False}`). ConfigError (a ValueError)
    names a bad key or value, before anything is compiled."""
    from headbayes.app import api

    folder = Path(tempfile.mkdtemp(prefix="headbayes-fit-"))
    try:
        config = _config(model, x, y, folder, x_test, y_test, experiment,
                         dict(mask=mask, likelihood=likelihood, prior=prior, sampler=sampler,
                              body=body), options)
        from headbayes.app.console import sampling_progress

        bar = sampling_progress() if progress else contextlib.nullcontext(None)
        with _no_compile_cache(), bar as update:
            api.run(config, folder / "run", progress=update)
    except HeadbayesError as e:
        shutil.rmtree(folder, ignore_errors=True)
        if type(e) in (ConfigError, SamplingError, RunDirError):  # one message argument
            raise type(e)(_without_folder(str(e), folder)) from None
        raise
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return Posterior(folder)


def _without_folder(message: str, folder: Path) -> str:
    """`message` naming fit's data as the user gave it, not the temporary files (removed)."""
    message = message.replace(f"data.path: {folder / 'train.npz'}", "x, y:")
    message = message.replace(f"data.test_path: {folder / 'test.npz'}", "x_test, y_test:")
    message = message.replace(str(folder / "train.npz"), "x, y")
    message = message.replace(str(folder / "test.npz"), "x_test, y_test")
    return re.sub(r"; \d+ draws kept before it are in \S+", "", message).replace(
        str(folder), "fit's temporary folder (removed)")


@contextlib.contextmanager
def _no_compile_cache():
    """No persistent compile cache for a fit (it would write outputs/jax_cache where the
    notebook runs), unless HEADBAYES_COMPILE_CACHE names one."""
    name = "HEADBAYES_COMPILE_CACHE"
    if settings().compile_cache_set:
        yield
        return
    os.environ[name] = ""
    try:
        yield
    finally:
        os.environ.pop(name, None)


def _config(model, x, y, folder: Path, x_test, y_test, experiment, sections: dict,
            options: dict):
    """The typed, checked RunConfig of fit's arguments, its data written to `folder`."""
    from omegaconf import OmegaConf, open_dict

    from headbayes.config.composition import checked, compose_dict
    from headbayes.models.given import give

    given = None
    if "hydra" in options:
        raise ConfigError("hydra: fit runs in a temporary folder, without Hydra; save the "
                          "result where you want it with .save(dir)")
    overrides = [] if experiment is None else [f"+experiment={_text(experiment, 'experiment')}"]
    if isinstance(model, (str, dict)):
        overrides += _section("model", model, "name")
    elif model is not None:
        given = give(model)
    data_options = options.pop("data", None) or {}
    if not isinstance(data_options, dict):
        raise ConfigError(f"data: a dict of data keys (test_fraction, val_fraction, seed, "
                          f"standardize, inputs), got {data_options!r:.80}")
    data_options = dict(data_options)  # the caller's dict stays as it is
    fixed = [k for k in data_options if k in DATA_KEYS_SET_BY_FIT]
    if fixed:
        raise ConfigError(f"data.{fixed[0]}: fit writes the data's file from x and y; give "
                          f"the data keys test_fraction, val_fraction, seed, standardize, "
                          f"inputs")
    table = _Table(x, y, x_test, y_test, data_options.pop("inputs", None))
    if sections["likelihood"] is None and table.text_labels:
        sections["likelihood"] = "categorical"
    for key in ("report", "adapters", "tracking"):
        if key in options and not isinstance(options[key], dict):
            raise ConfigError(f"{key}: a dict of {key} keys ({key}={{...}}), got "
                              f"{options[key]!r:.80}")
    for name, value in sections.items():
        if value is not None:
            overrides += (_mask(value) if name == "mask"
                          else _section(name, value, OPTION_KEY[name]))
    for key, value in options.items():
        overrides += _flat(key, value)
    overrides += ["data=npz", *_flat("data", data_options)]
    try:
        composed = compose_dict(overrides)
    except ConfigError as e:
        if experiment is None or "data 'npz' has no key" not in str(e):
            raise
        composed = None
    if composed is None or composed.data.name != "npz":
        raise ConfigError(f"experiment {experiment!r} brings its own data (its data keys do "
                          f"not apply to x and y); fit uses your arrays: start from an "
                          f"experiment for your own data (experiment='tabular'), or give the "
                          f"sections yourself")
    classes = table.text_labels or _is_classifier(composed.likelihood.name)
    if table.text_labels and not _is_classifier(composed.likelihood.name):
        raise ConfigError(f"y holds labels (text or bool), and likelihood "
                          f"'{composed.likelihood.name}' is for numbers: a classifier's "
                          f"likelihood (categorical, bernoulli) takes labels")
    paths = table.write(folder)
    with open_dict(composed):
        OmegaConf.update(composed, "data", {"path": str(paths[0]), "target": table.target,
                                            "classes": classes,
                                            "test_path": str(paths[1]) if paths[1] else ""},
                         merge=True)
        groups = sections["mask"].get("groups") if isinstance(sections["mask"], dict) else None
        if groups is not None:  # new keys: set on the composed config, typed by checked()
            _value(groups, "mask.groups")  # plain values only, no interpolation
            OmegaConf.update(composed, "mask.groups", groups, merge=False)
        if given is not None:
            composed.model = OmegaConf.create(vars(given))
            if sections["mask"] is None:
                OmegaConf.update(composed, "mask", {"include": [_last_stage(model)],
                                                    "exclude": [], "groups": {}}, merge=True)
    return checked(composed)


def _is_classifier(name: str) -> bool:
    from headbayes.core.registry import registry_of

    entry = registry_of("likelihood")
    return name in entry.names() and entry[name].extras["kind"] == "classification"


def _last_stage(model) -> str:
    """The default mask of a given model: its last stage."""
    from headbayes.models import stages_of
    from headbayes.models.mask import named_leaves

    stages = stages_of(model)
    if stages:
        return stages[-1]
    import equinox as eqx

    paths = list(named_leaves(eqx.filter(model, eqx.is_array)))
    raise ConfigError(f"mask: name the leaves to sample, mask=[...] (the model has no "
                      f"`stages` that say which layer is last; its leaves: "
                      f"{', '.join(paths[:12])}{' ...' if len(paths) > 12 else ''})")


def _text(value, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{what}: a name, got {value!r:.80}")
    return value


def _mask(value) -> list[str]:
    if isinstance(value, str):
        options = _mask_options()
        if value not in options:
            raise ConfigError(f"mask: {value!r} is no mask option ({', '.join(options)}); "
                              f"leaves to sample are a list: mask=[{value!r}]")
        return [f"mask={value}"]
    if isinstance(value, (list, tuple)):
        return [f"mask.include={_value(list(value), 'mask')}", "mask.exclude=[]"]
    if isinstance(value, dict):
        return _flat("mask", {k: v for k, v in value.items() if k != "groups"})
    raise ConfigError(f"mask: a list of leaf selectors, a mask name or a dict of mask keys, "
                      f"got {value!r:.80}")


def _mask_options() -> list[str]:
    """The mask config files: the package's and ./configs/mask's."""
    from importlib.resources import files

    shipped = files("headbayes.configs").joinpath("mask").iterdir()
    names = {p.name[:-len(".yaml")] for p in shipped if p.name.endswith(".yaml")}
    local = Path.cwd() / "configs" / "mask"
    return sorted(names | ({p.stem for p in local.glob("*.yaml")} if local.is_dir() else set()))


def _section(group: str, value, option_key: str) -> list[str]:
    """`sampler="nuts"` or `sampler={"name": "nuts", "keep": 500}` as overrides."""
    if isinstance(value, str):
        return [f"{group}={value}"]
    if not isinstance(value, dict):
        raise ConfigError(f"{group}: an option name or a dict of {group} keys, got "
                          f"{value!r:.80}")
    rest = {k: v for k, v in value.items() if k != option_key}
    chosen = [f"{group}={_text(value[option_key], f'{group}.{option_key}')}"] \
        if option_key in value else []
    return chosen + _flat(group, rest)


def _flat(key: str, value) -> list[str]:
    """`KEY=VALUE` overrides of a value (a dict: one per key)."""
    if isinstance(value, dict):
        return [line for k, v in value.items() for line in _flat(f"{key}.{_key(k)}", v)]
    return [f"{key}={_value(value, key)}"]


def _key(name) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigError(f"config keys are names, got {name!r:.80}")
    return name


def _value(value, key: str) -> str:
    """`value` in Hydra's override grammar: numbers, booleans, null, quoted strings, lists."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # inf, -inf and nan are Hydra's spellings too
    if isinstance(value, str):
        _refuse_interpolation(value, key)
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_value(v, key) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_key(k)}:{_value(v, key)}" for k, v in value.items()) + "}"
    raise ConfigError(f"{key}: numbers, text, booleans, None, lists and dicts only, got "
                      f"{type(value).__name__}")


def _refuse_interpolation(text: str, what: str) -> None:
    if "${" in text:
        raise ConfigError(f"{what}: {text!r} holds '${{', which the config would read as an "
                          f"interpolation; rename it")


class _Table:
    """fit's x and y as named columns: a frame's names, else x0, x1, ... and y. Input columns
    are numbers (bool as 0 and 1); a frame's other columns are refused unless `inputs` leaves
    them out. The target holds numbers, or labels (text, bool or integers) for a classifier."""

    def __init__(self, x, y, x_test, y_test, inputs=None):
        self.chosen = None if not inputs else [str(n) for n in inputs]
        self.inputs, self.target, self.train = self._columns(x, y, "x", "y")
        self.test = None
        if (x_test is None) != (y_test is None):
            raise ConfigError("x_test and y_test come together (held-out inputs and targets; "
                              "y_test may name a column of x_test)")
        if x_test is not None:
            inputs, _, self.test = self._columns(x_test, y_test, "x_test", "y_test",
                                                 self.target)
            missing = [n for n in self.inputs if n not in inputs]
            if missing:
                raise ConfigError(f"x_test: no column {missing[0]!r} (x's inputs: "
                                  f"{', '.join(self.inputs)})")
            self.test = {n: self.test[n] for n in [*self.inputs, self.target]}
        labels = [part[self.target] for part in (self.train, self.test) if part is not None]
        self.text_labels = any(v.dtype.kind == "U" for v in labels)  # `_column`: text or floats

    def _columns(self, x, y, x_name: str, y_name: str, target: str | None = None):
        """(input names, target name, {name: values}) of one part."""
        if hasattr(x, "columns"):  # a pandas DataFrame: its columns by name
            names = [str(c) for c in x.columns]
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise ConfigError(f"{x_name}: more than one column is named {repeated[0]!r} "
                                  f"(names are compared as text)")
            for name in names:
                _refuse_interpolation(name, f"{x_name}: column")
            named = y is not None and np.ndim(y) == 0
            if named and str(y) not in names:
                raise ConfigError(f"{y_name}: no column {str(y)!r} in {x_name} (its columns: "
                                  f"{', '.join(names)})")
            name = str(y) if named else None
            if named and target is not None and name != target:
                raise ConfigError(f"{y_name}: the target column is {target!r} (as in fit's "
                                  f"y), not {name!r}")
            columns = dict(zip(names, (x[c] for c in x.columns)))
            values = columns.pop(name) if named else None
        else:
            if isinstance(y, str):
                raise ConfigError(f"{y_name}: a column name needs {x_name} as a pandas "
                                  f"DataFrame; give the target's values")
            array = _array(x, x_name)
            array = array[:, None] if array.ndim == 1 else array
            if array.ndim != 2:
                raise ConfigError(f"{x_name}: (rows, inputs) values, got shape {array.shape}")
            columns = {f"x{j}": array[:, j] for j in range(array.shape[1])}
            named, values = False, None
        if self.chosen is not None:
            missing = [n for n in self.chosen if n not in columns]
            if missing:
                raise ConfigError(f"data.inputs: no column {missing[0]!r} in {x_name} (its "
                                  f"columns: {', '.join(columns)})")
            columns = {n: columns[n] for n in self.chosen}
        columns = {n: _input_column(v, f"{x_name}: column {n!r}") for n, v in columns.items()}
        if not named:
            if y is None:
                raise ConfigError(f"{y_name}: the targets (one per row), or a column name of "
                                  f"{x_name}")
            name = target or str(getattr(y, "name", None) or "y")
            values = y
            if name in columns:
                name = target or "target"  # a frame's column is called y: the values' name
            if name in columns:
                raise ConfigError(f"{y_name}: its name {name!r} is a column of {x_name} too")
        _refuse_interpolation(name, y_name)
        values = _column(values, y_name)
        lengths = {len(v) for v in columns.values()}
        if lengths != {len(values)}:
            raise ConfigError(f"{x_name} has {sorted(lengths)[0]} rows, {y_name} "
                              f"{len(values)}: one target per row")
        return list(columns), name, {**columns, name: values}

    def write(self, folder: Path) -> tuple:
        """(train file, test file or None) as npz under `folder`."""
        paths = []
        for part, columns in (("train", self.train), ("test", self.test)):
            if columns is None:
                paths.append(None)
                continue
            path = folder / f"{part}.npz"
            np.savez(path, **columns)
            paths.append(path)
        return tuple(paths)


def _input_column(values, what: str) -> np.ndarray:
    """An input column as float64: numbers, or bool as 0 and 1; text is refused."""
    array = np.asarray(values)
    if array.dtype.kind == "b":
        return array.astype(np.float64)
    if array.dtype.kind not in "biuf":
        try:
            return _array(array.astype(np.float64), what)
        except (TypeError, ValueError):
            raise ConfigError(f"{what} holds values that are not numbers ({array.dtype}): "
                              f"encode it as numbers (pandas.get_dummies, say) or leave it "
                              f"out (data={{'inputs': [...]}})") from None
    return _array(array, what)


def _array(values, what: str) -> np.ndarray:
    try:
        array = np.asarray(values)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{what}: not an array of numbers: {e}") from None
    if array.dtype.kind not in "biuf":
        raise ConfigError(f"{what}: numbers only, got {array.dtype} values")
    return array.astype(np.float64)


def _column(values, what: str) -> np.ndarray:
    """One value per row: numbers as float64, text or bool labels as text; a missing label
    (None, NaN among text) is refused."""
    array = np.asarray(values)
    if array.dtype.kind == "O":
        missing = [i for i, v in enumerate(array.tolist())
                   if v is None or isinstance(v, float) and v != v]
        if missing and not all(isinstance(v, (int, float)) for v in array.tolist()):
            raise ConfigError(f"{what}: no label at position {missing[0]} (None or NaN); "
                              f"drop the row or give its label")
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ConfigError(f"{what}: one value per row, got shape {array.shape}")
    if array.dtype.kind == "b":
        return array.astype(str)
    if array.dtype.kind in "OU":
        if all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
               for v in array.tolist()):
            return array.astype(np.float64)
        return array.astype(str)
    if array.dtype.kind == "S":
        return array.astype(str)
    return _array(array, what)


class Posterior(RunDir):
    """A fit's posterior: its run directory in a private temporary folder (removed with this
    object), read as any `RunDir` (`.metrics`, `.draws(leaf)`, `.predict(x)`, `.data()`,
    `.config`), plus `.report()` and `.save(dir)`."""

    def __init__(self, folder: Path):
        super().__init__(folder / "run")
        self._folder = folder
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(folder), True)

    def __repr__(self) -> str:
        described = getattr(self.config.model, "described", self.config.model.name)
        return (f"Posterior({described}; sampler {self.config.sampler.name}; "
                f"{len(self.metrics)} figures; .save(dir) keeps it)")

    def save(self, directory) -> RunDir:
        """Copy the run directory to `directory` (new, or an empty folder): an ordinary run
        directory, read again with `headbayes.load_run(directory, model=net)`."""
        if not isinstance(directory, (str, os.PathLike)):
            raise ConfigError(f"save: a folder's path, got {type(directory).__name__}")
        target = Path(directory)
        if os.path.lexists(target) and (not target.is_dir() or target.is_symlink()
                                        or any(target.iterdir())):
            raise ConfigError(f"save: {target} exists and is not an empty folder")
        if target.is_dir():
            target.rmdir()
        shutil.copytree(self.path, target, symlinks=True, ignore=shutil.ignore_patterns(".lock"))
        return RunDir(target)

    def report(self) -> "Report":
        """The report's figures and plots; shown inline in Jupyter."""
        names = (RunFiles.PREDICTIVE_PLOT, RunFiles.CALIBRATION_PLOT, RunFiles.PHYSICS_PLOT,
                 RunFiles.TRACE_PLOT)
        return Report(self.metrics, [self.path / name for name in names
                                     if (self.path / name).is_file()])


class Report:
    """Figures (metrics.json) and plots of a run: a table as text, HTML with the plots in
    Jupyter."""

    def __init__(self, metrics: dict, plots: list):
        self.metrics = metrics
        self.plots = plots

    def _rows(self) -> list[tuple[str, str]]:
        from headbayes.app.console import format_value

        return [(k, format_value(v)) for k, v in self.metrics.items()
                if isinstance(v, (int, float, str)) or v is None]

    def __repr__(self) -> str:
        rows = self._rows()
        width = max((len(k) for k, _ in rows), default=0)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)

    def _repr_html_(self) -> str:
        table = "".join(f"<tr><td>{html.escape(k)}</td><td style='text-align:right'>"
                        f"{html.escape(v)}</td></tr>" for k, v in self._rows())
        images = "".join(f"<img src='data:image/png;base64,"
                         f"{base64.b64encode(p.read_bytes()).decode()}' style='max-width:32%'>"
                         for p in self.plots)
        return f"<table>{table}</table><div>{images}</div>"
