"""Experiment tracking: `+tracking=mlflow` logs each finished run to MLflow.

One MLflow run per headbayes run, named after its run directory: the flattened config as
parameters, every numeric metric (a Gibbs run's `groups` as `groups.NAME.KEY`), the verdict
and the run directory as tags, and metrics.json, meta.json and the plots as artifacts. The jobs
of a sweep are children of one parent run per sweep directory (its id kept in
SWEEP_DIR/mlflow_parent.json, created once under a lock, so jobs on parallel launchers share
it). The store is $MLFLOW_TRACKING_URI when set, else `tracking.uri`, else a local file store
under the output directory ($HEADBAYES_OUTPUT_DIR/mlruns, default outputs/mlruns; MLflow 3
keeps that store in maintenance mode, so headbayes sets MLFLOW_ALLOW_FILE_STORE=true for
it; point MLFLOW_TRACKING_URI at a database or server for the rest). The client
is an optional extra (`pip install 'headbayes[mlflow]'`, the lightweight `mlflow-skinny`);
without it `+tracking=mlflow` exits 2 before anything runs. Tracking never shapes the chain.
"""

import json
import os
from pathlib import Path
from headbayes.config.typed import flat_values
from headbayes.core import store
from headbayes.core.settings import settings
from headbayes.report.figures import flat_figures


__all__ = ["tracking_uri", "log_run", "PARENT_FILE"]

PARENT_FILE = "mlflow_parent.json"
ARTIFACTS = ("metrics.json", "meta.json", "predictive.png", "calibration.png", "trace.png")


def tracking_uri(tracking) -> str:
    if settings().mlflow_uri:
        return settings().mlflow_uri
    if tracking.uri:
        return tracking.uri
    root = settings().output_dir / "mlruns"
    return root.resolve().as_uri()


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
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    tracking = run_config.tracking
    uri = tracking_uri(tracking)
    if uri.startswith("file:"):  # MLflow 3 keeps its file store only on request
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(tracking.experiment)
    experiment_id = (found.experiment_id if found is not None
                     else client.create_experiment(tracking.experiment))
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
