"""The Python API: compose a config, run it, load a run and predict with it.

```python
import headbayes

cfg = headbayes.compose(["+experiment=sin_head", "seed=1"])
run = headbayes.run(cfg, "outputs/my_run")   # samples, writes the run directory and its report
run.metrics["rel_l2"]
run.draws("output_layer.weight").shape        # (chain, draw, 1, 16)
run.predict(x)                                # {"mean": ..., "sd": ..., "q05": ..., ...}
run.data()["test"]["x"]                       # the held-out rows, in the data's units
same = headbayes.load_run("outputs/my_run")
```
"""

import datetime
import os
from functools import cached_property
from pathlib import Path

import numpy as np

from headbayes.core.errors import ConfigError
from headbayes.core.rundir import RunFiles
from headbayes.core.schema import RunConfig
from headbayes.core.settings import settings

__all__ = ["compose", "run", "load_run", "RunDir"]


def compose(overrides=()):
    """The typed, range-checked `RunConfig` of Hydra `overrides` (as on the command line,
    without -m); ConfigError (a ValueError) naming the key on bad input."""
    from headbayes.config.composition import compose as compose_overrides

    if not isinstance(overrides, (list, tuple)) or not all(isinstance(o, str) for o in overrides):
        raise ConfigError(f"compose takes a list of override strings such as "
                          f"['+experiment=sin_head'], got {overrides!r:.80}")
    return compose_overrides(list(overrides))


class RunDir:
    """A run directory, read lazily: `.config`, `.metrics`, `.draws(leaf)`, `.predict(x)`.
    `code`: folders whose modules you trust, where a saved `model._target_` may be imported
    from when the run recorded other source (`headbayes report --code`); `model`: for a run
    of `headbayes.fit` read in another process, the equinox model it was given."""

    def __init__(self, path, code=(), model=None):
        if not isinstance(path, (str, os.PathLike)):
            raise ConfigError(f"a run directory is a path, got {type(path).__name__}")
        self.path = RunFiles.existing(path).root
        code = (code,) if isinstance(code, (str, os.PathLike)) else code or ()
        if not isinstance(code, (list, tuple)) or not all(
                isinstance(c, (str, os.PathLike)) for c in code):
            raise ConfigError(f"code is a folder or a list of folders, got {code!r:.80}")
        self._code = tuple(code)
        self._model = model

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @cached_property
    def config(self):
        from headbayes.config.saved import load_config

        from headbayes.models.code import vouched_folders

        return load_config(RunFiles(self.path), code=vouched_folders(self._code),
                           model=self._model)

    @property
    def meta(self) -> dict:
        """meta.json: versions, counts (gradient evaluations), timings, device."""
        files = RunFiles(self.path)
        return files.read_json(files.META)

    @property
    def metrics(self) -> dict:
        """metrics.json: the report's figures (ConfigError for a run not finished yet)."""
        files = RunFiles(self.path)
        if not files.has(files.METRICS):
            raise ConfigError(f"{self.path} holds no metrics.json: no finished run (status: "
                              f"{files.status().get('status', 'missing')}); finish it with "
                              f"`headbayes resume {self.path}`, or `headbayes report` it")
        from headbayes.report.figures import checked_figures

        return checked_figures(files.read_json(files.METRICS), files.path(files.METRICS))

    def data(self) -> dict:
        """The run's data in its original units, rebuilt from its config and its own copies
        of the files: {part: {"x": (n, inputs), "y": (n,), "rows": (n,)}} for the parts it
        has ("train", "val", "test"); "y" holds class names for a classifier; "rows" (the
        file's 0-based data rows, as split.npz holds them) only for data read from a file."""
        from headbayes.datasets import IDENTITY, make_dataset

        data = make_dataset(self.config.data)
        scaling = data.scaling or IDENTITY(data.x_train.shape[1])
        parts = {}
        for part in ("train", "val", "test"):
            x, y = getattr(data, f"x_{part}"), getattr(data, f"y_{part}")
            if x is None:
                continue
            x = np.asarray(x, np.float64) * scaling.x_scale + scaling.x_shift
            y = (np.asarray(data.classes)[np.asarray(y[:, 0], int)] if data.classes
                 else scaling.y_to_original(y)[:, 0])
            parts[part] = {"x": x, "y": y, **({"rows": np.asarray(data.rows[part])}
                                              if data.rows is not None else {})}
        return parts

    def draws(self, leaf: str | None = None):
        """The draws of a sampled leaf, axes (chain, draw, *shape); without `leaf`, those of
        every sampled leaf (and σ when sampled) by name."""
        chain, _ = RunFiles(self.path).chain()
        if leaf is None:
            return dict(chain)
        if leaf not in chain:
            raise ConfigError(f"leaf '{leaf}' was not sampled; sampled: {', '.join(chain)}")
        return chain[leaf]

    def predict(self, x) -> dict:
        """Predictive summaries at `x` (n, inputs) in the data's original units, or a dict of
        input columns by name; see `headbayes.report.predict`."""
        from headbayes.models.code import vouched_folders
        from headbayes.report.predict import predict_arrays

        if hasattr(x, "columns") or hasattr(x, "index") and hasattr(x, "to_dict"):
            # a pandas DataFrame (or Series): its columns (or index) by name, never by position
            x = ({str(k): np.asarray(x[k]) for k in x.columns} if hasattr(x, "columns")
                 else {str(k): np.asarray([v]) for k, v in x.to_dict().items()})
        if isinstance(x, dict):
            from headbayes.report.predict import data_description

            description = data_description(self.path, self.config)
            names = description["inputs"]
            missing = [n for n in names if n not in x]
            if missing:
                raise ConfigError(f"inputs: no column {missing[0]!r} (the run's inputs: "
                                  f"{', '.join(names)})")
            other = [str(k) for k in x if k not in names and k != description["target"]]
            if other:  # as the command line: the target may be there, nothing else
                raise ConfigError(f"inputs: column {other[0]!r} is none of the run's inputs "
                                  f"({', '.join(names)}) nor its target")
            flat = [n for n in names if np.ndim(x[n]) > 1]
            if flat:
                raise ConfigError(f"inputs: column {flat[0]!r} must hold one value per row, "
                                  f"got shape {np.shape(x[flat[0]])}")
            x = [np.asarray(x[n]).reshape(-1) for n in names]
            x = np.stack(x, axis=1) if len({len(c) for c in x}) == 1 else x
        try:
            raw = np.asarray(x)
        except (ValueError, TypeError):  # ragged: refused below
            raw = None
        if raw is not None and (raw.dtype.kind == "c" or raw.dtype == object and any(
                isinstance(v, complex) for v in raw.ravel())):
            raise ConfigError("inputs must be real numbers (a complex number was given)")
        try:
            x = np.asarray(x, np.float64)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"inputs must be numbers, (rows, inputs) or a dict of input "
                              f"columns: {type(e).__name__}: {e}") from None
        x = x.reshape(1, 1) if x.ndim == 0 else x[None, :] if x.ndim == 1 else x
        return predict_arrays(self.path, x, code=vouched_folders(self._code), model=self._model)


def _default_run_dir() -> Path:
    stamp = datetime.datetime.now().strftime("%Y-%m-%d/%H-%M-%S-%f")
    return settings().output_dir / "runs" / f"{stamp}_api"


def run(config, run_dir=None, progress=None, report: bool = True) -> RunDir:
    """Sample `config` (from `compose`) into `run_dir` (default: a new directory under
    outputs/runs/), write the report (metrics.json; the plots unless `report.plots` is false)
    and status.json; with `+tracking=mlflow` log it (the store is asked before sampling);
    return the `RunDir`. Errors raise HeadbayesError subclasses (ConfigError,
    SamplingError, ...); status.json records them. A `run_dir` holding committed chunks of the
    same config resumes from them; one holding another config's is refused (OtherRunInDir),
    nothing changed."""
    from headbayes.app import session
    from headbayes.config.typed import validate

    if not isinstance(config, RunConfig):
        raise ConfigError(f"run takes the config `headbayes.compose([...])` returns, got "
                          f"{type(config).__name__}")
    if run_dir is not None and not isinstance(run_dir, (str, os.PathLike)):
        raise ConfigError(f"run_dir is a path, got {type(run_dir).__name__}")
    run_dir = Path(run_dir) if run_dir is not None else _default_run_dir()
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is a file, not a folder for the run")
    validate(config)
    from headbayes.report.tracking import check_store

    check_store(config.tracking)  # with tracking, the store answers before anything is sampled
    run_dir.mkdir(parents=True, exist_ok=True)
    with session.owned(run_dir):
        resume = session.holds_this_run(config, run_dir)  # before anything is written
        job = session.sample(config, run_dir, progress or (lambda *args: None), resume,
                             on_sampling=session.plots_prefetch(config) if report else None)
        if report:
            figures, _ = session.report(config, run_dir, job)
    if report and config.tracking.backend == "mlflow":
        session.track(config, run_dir, figures)
    return RunDir(run_dir)


def load_run(path, code=(), model=None) -> RunDir:
    """The run directory at `path` (its files are read when first asked for); `code` and
    `model` as in `RunDir`."""
    return RunDir(path, code, model)
