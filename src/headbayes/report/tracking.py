"""Experiment tracking: `+tracking=mlflow` logs each finished run to MLflow.

One MLflow run per headbayes run, named after its run directory: the flattened config as
parameters, every numeric metric (a Gibbs run's `groups` as `groups.NAME.KEY`), the verdict
and the run directory as tags, and metrics.json, meta.json and the plots as artifacts. The jobs
of a sweep are children of one parent run per sweep directory (its id kept in
SWEEP_DIR/mlflow_parent.json, created once under a lock, so jobs on parallel launchers share
it). The store is $MLFLOW_TRACKING_URI when set, else `tracking.uri`, else a SQLite database
under the output directory (MLflow's recommended local store: $HEADBAYES_OUTPUT_DIR/mlflow.db,
default outputs/mlflow.db, with the artifacts beside it in outputs/mlartifacts). Whichever it
is, `check_store` asks it once before sampling (`headbayes run`, `resume`): a store that does
not answer exits 2 with one line. MLflow (`pip install 'headbayes[mlflow]'`, with its server
and UI) is an optional extra; without it `+tracking=mlflow` exits 2 before anything runs.
Tracking never shapes the chain.
"""

import contextlib
import json
import logging
import os
from pathlib import Path
from headbayes.config.typed import flat_values
from headbayes.core import store
from headbayes.core.errors import ConfigError
from headbayes.core.settings import settings
from headbayes.report.figures import flat_figures


__all__ = ["tracking_uri", "check_store", "log_run", "PARENT_FILE", "DEFAULT_STORE"]

PARENT_FILE = "mlflow_parent.json"
ARTIFACTS = ("metrics.json", "meta.json", "predictive.png", "calibration.png", "trace.png")
DEFAULT_STORE = ("mlflow.db", "mlartifacts")  # under the output directory


def _default_store() -> tuple[str, str]:
    """(tracking URI, artifact location) of the default store under the output directory."""
    root = settings().output_dir.resolve()
    database, artifacts = (root / name for name in DEFAULT_STORE)
    return f"sqlite:///{database}", artifacts.as_uri()


def tracking_uri(tracking) -> str:
    if settings().mlflow_uri:
        return settings().mlflow_uri
    if tracking.uri:
        return tracking.uri
    return _default_store()[0]


@contextlib.contextmanager
def _client(uri: str, quick: bool = False):
    """An MlflowClient of `uri` (the default store's folder created first), with MLflow's
    INFO lines (creating a database's tables) kept quiet; `quick`: HTTP without retries and
    with a 10 s timeout, to ask whether a store answers."""
    from mlflow.tracking import MlflowClient

    if uri == _default_store()[0]:
        settings().output_dir.mkdir(parents=True, exist_ok=True)
    if uri.startswith("file:"):  # MLflow 3 keeps its file store only on request
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    quiet = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
    saved = {k: os.environ.get(k) for k in quiet} if quick else {}
    logger = logging.getLogger("mlflow")
    level = logger.level
    try:
        os.environ.update(quiet if quick else {})
        logger.setLevel(max(level, logging.WARNING))
        yield MlflowClient(uri)
    finally:
        logger.setLevel(level)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def check_store(tracking) -> None:
    """With `tracking.backend=mlflow`, ConfigError (one line, exit 2) unless the tracking store
    answers a search; nothing without tracking."""
    if tracking.backend != "mlflow":
        return
    uri = tracking_uri(tracking)
    if not tracking.experiment.strip():
        raise ConfigError("tracking.experiment: the MLflow experiment needs a name")
    if uri.rstrip("/") in ("sqlite:", "sqlite:/", "sqlite://") or ":memory:" in uri:
        raise ConfigError(f"tracking: {uri} is an in-memory database, which keeps nothing "
                          f"after the run; give a file, sqlite:///PATH.db")
    try:
        with _client(uri, quick=True) as client:
            client.search_experiments(max_results=1)
    except Exception as e:  # noqa: BLE001 (any client, driver or server error)
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        if "maintenance mode" in first:  # a plain string is a path to MLflow's file store
            raise ConfigError(f"tracking: {uri!r} is no tracking URI MLflow serves (a path "
                              f"means MLflow's file store, which MLflow 3 keeps only with "
                              f"MLFLOW_ALLOW_FILE_STORE=true): give http://HOST:PORT or "
                              f"sqlite:///PATH.db") from None
        raise ConfigError(f"tracking: the MLflow store {uri} does not answer "
                          f"({type(e).__name__}: {first[:300]}); start it, or set "
                          f"MLFLOW_TRACKING_URI or tracking.uri to one that does") from None


def _split_metrics(figures: dict) -> tuple[dict, dict]:
    """(numeric metrics, text ones), a Gibbs run's `groups` as `groups.NAME.KEY`."""
    numbers, texts = {}, {}
    for key, value in flat_figures(figures).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            numbers[key] = float(value)
        elif value is not None:
            texts[key] = str(value)
    return numbers, texts


def _parent_run(client, experiment_id: str, sweep_dir: Path) -> str:
    """The id of the sweep's parent run, created by the first job that asks (under a lock)."""
    import fcntl

    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)  # never through a link
    with os.fdopen(os.open(sweep_dir / ".mlflow_parent.lock", flags, 0o644), "r+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = sweep_dir / PARENT_FILE
        if path.exists() and not path.is_symlink():
            recorded = json.loads(store.read_bytes(path)).get("run_id")
            if isinstance(recorded, str) and recorded.isalnum():
                return recorded
        parent = client.create_run(experiment_id, run_name=f"sweep {sweep_dir.name}",
                                   tags={"headbayes.sweep_dir": str(sweep_dir.resolve())})
        client.set_terminated(parent.info.run_id)
        store.write_bytes(path, json.dumps({"run_id": parent.info.run_id}).encode())
        return parent.info.run_id


def log_run(run_config, run_dir: Path, figures: dict, sweep_dir: Path | None = None) -> str:
    """Log the finished run (see the module docstring); returns the MLflow run id."""
    tracking = run_config.tracking
    uri = tracking_uri(tracking)
    with _client(uri) as client:
        return _log(client, uri, run_config, run_dir, figures, sweep_dir)


def _log(client, uri: str, run_config, run_dir: Path, figures: dict, sweep_dir) -> str:
    from mlflow.entities import Metric, Param

    tracking = run_config.tracking
    found = client.get_experiment_by_name(tracking.experiment)
    default, artifacts = _default_store()
    experiment_id = (found.experiment_id if found is not None else client.create_experiment(
        tracking.experiment, artifact_location=artifacts if uri == default else None))
    tags = {"headbayes.run_dir": str(Path(run_dir).resolve())}
    if sweep_dir is not None:
        tags["mlflow.parentRunId"] = _parent_run(client, experiment_id, Path(sweep_dir))
    numbers, texts = _split_metrics(figures)
    tags.update({f"headbayes.{k}": v[:5000] for k, v in texts.items()})
    run = client.create_run(experiment_id, run_name=Path(run_dir).name, tags=tags)
    params = [Param(k, str(v)[:6000]) for k, v in flat_values(run_config).items()]
    metrics = [Metric(k, v, 0, 0) for k, v in numbers.items()]
    for start in range(0, max(len(params), len(metrics)), 100):  # the API's batch limits
        client.log_batch(run.info.run_id, metrics=metrics[start:start + 100],
                         params=params[start:start + 100])
    for name in ARTIFACTS:
        path = Path(run_dir) / name
        if path.is_file() and not path.is_symlink():
            client.log_artifact(run.info.run_id, str(path))
    client.set_terminated(run.info.run_id)
    return run.info.run_id
