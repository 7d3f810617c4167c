"""`+tracking=mlflow`: each run logged to MLflow, read back with the MLflow client."""

import json
import os

import pytest

import headbayes
from headbayes.core.errors import ConfigError
from run_edits import rerecord

TINY = ["+experiment=sin_head", "sampler.warmup=50", "sampler.keep=20", "+tracking=mlflow"]


def _client(tmp_path):
    """The default store: a SQLite database under the output directory."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(f"sqlite:///{(tmp_path / 'outputs' / 'mlflow.db').resolve()}")


def _runs(client):
    experiment = client.get_experiment_by_name("headbayes")
    return client.search_runs([experiment.experiment_id])


@pytest.mark.slow
def test_a_run_is_logged_with_config_metrics_verdict_and_artifacts(headbayes, tmp_path):
    run_dir = tmp_path / "run"
    result = headbayes("run", *TINY, f"hydra.run.dir={run_dir}", check_code=0)
    assert "logged to MLflow" in result.stdout
    (run,) = _runs(_client(tmp_path))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert run.data.params["sampler.name"] == "sgld"
    assert run.data.params["sampler.keep"] == "20" and run.data.params["seed"] == "0"
    assert run.data.metrics["rhat_max"] == pytest.approx(metrics["rhat_max"])
    assert run.data.metrics["num_draws"] == 20
    assert run.data.tags["headbayes.verdict"] == metrics["verdict"]
    assert run.data.tags["headbayes.run_dir"] == str(run_dir.resolve())
    names = {a.path for a in _client(tmp_path).list_artifacts(run.info.run_id)}
    assert {"metrics.json", "meta.json", "predictive.png", "trace.png"} <= names
    kept = tmp_path / "outputs" / "mlartifacts" / run.info.run_id / "artifacts"
    assert (kept / "metrics.json").read_bytes() == (run_dir / "metrics.json").read_bytes()


def test_a_store_that_does_not_answer_stops_the_run_before_sampling(headbayes, tmp_path,
                                                                    monkeypatch):
    """In a process of its own, as typed (importing MLflow into this test process, with
    everything the suite has imported, takes 10 s)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens there
    result = headbayes("run", *TINY, f"hydra.run.dir={tmp_path / 'never'}")
    assert result.returncode == 2 and not (tmp_path / "never").exists()
    assert result.stderr.count("\n") == 1 and "the MLflow store http://127.0.0.1:9 does not " \
        "answer" in result.stderr


@pytest.mark.slow  # 25 s: an MLflow server, a two-job sweep
def test_a_sweep_reaches_a_real_mlflow_server_on_sqlite(headbayes, tmp_path):
    """`mlflow server` with a SQLite backend and served artifacts, as a team would run it:
    the sweep's runs, parameters, metrics and artifacts read back through the client."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    from mlflow.tracking import MlflowClient

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "server_artifacts"), "--workers", "1"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    uri = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=1)
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-2000:]
                time.sleep(0.5)
        sweep = tmp_path / "sweep"
        os.environ["MLFLOW_TRACKING_URI"] = uri
        try:
            headbayes("run", "-m", *TINY, "seed=0,1", f"hydra.sweep.dir={sweep}",
                      check_code=0)
        finally:
            del os.environ["MLFLOW_TRACKING_URI"]
        client = MlflowClient(uri)
        runs = _runs(client)
        parent = json.loads((sweep / "mlflow_parent.json").read_text())["run_id"]
        children = {r.data.params["seed"]: r for r in runs
                    if r.data.tags.get("mlflow.parentRunId") == parent}
        assert sorted(children) == ["0", "1"] and len(runs) == 3
        for seed, run in children.items():
            metrics = json.loads((sweep / seed / "metrics.json").read_text())
            assert run.data.metrics["rhat_max"] == pytest.approx(metrics["rhat_max"])
            assert run.data.params["sampler.keep"] == "20"
            assert run.data.tags["headbayes.verdict"] == metrics["verdict"]
            fetched = client.download_artifacts(run.info.run_id, "metrics.json",
                                                str(tmp_path / f"fetched{seed}"))
            assert json.loads(open(fetched).read()) == metrics
            assert "trace.png" in {a.path for a in client.list_artifacts(run.info.run_id)}
        assert (tmp_path / "server_artifacts").is_dir()
        assert not (tmp_path / "outputs" / "mlflow.db").exists()  # the server's store only
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow  # 6 s: a two-job sweep
def test_a_sweeps_jobs_are_children_of_one_parent(headbayes, tmp_path):
    sweep = tmp_path / "sweep"
    headbayes("run", "-m", *TINY, "seed=0,1", "report.plots=false",
              f"hydra.sweep.dir={sweep}", check_code=0)
    runs = _runs(_client(tmp_path))
    parent = json.loads((sweep / "mlflow_parent.json").read_text())["run_id"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent]
    assert sorted(r.data.params["seed"] for r in children) == ["0", "1"]
    (root,) = [r for r in runs if r.info.run_id == parent]
    assert root.data.tags["headbayes.sweep_dir"] == str(sweep.resolve())


def test_without_the_client_tracking_exits_2(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install 'headbayes\[mlflow\]'"):
        headbayes.compose(TINY)


def test_tracking_is_not_a_setting_of_the_chain():
    from headbayes.config.typed import differences

    plain = headbayes.compose(TINY[:-1])
    assert differences(plain, headbayes.compose(TINY)) == []


@pytest.mark.slow  # 12 s: a run and a resume with MLflow; `make test-all` runs it
def test_resume_never_follows_a_run_directorys_own_tracking_settings(headbayes, tmp_path,
                                                                     run_in_process):
    """A run directory may come from someone else: a tracking.uri saved in it (anyone's
    server) is not used by `resume`; only the tracking.* keys typed on its command line."""
    _, _, run_dir = run_in_process(*TINY[:-1], "report.plots=false", name="theirs")
    saved = json.loads((run_dir / "run_config.json").read_text())
    elsewhere = tmp_path / "their_server"
    saved["tracking"] = {"backend": "mlflow", "experiment": "x", "uri": elsewhere.as_uri()}
    (run_dir / "run_config.json").write_text(json.dumps(saved))
    rerecord(run_dir)
    result = headbayes("resume", run_dir, check_code=0)
    assert "logged to MLflow" not in result.stdout and not elsewhere.exists()
    result = headbayes("resume", run_dir, "tracking.backend=mlflow", check_code=0)
    assert "logged to MLflow" in result.stdout and not elsewhere.exists()
    assert len(_runs(_client(tmp_path))) == 1  # the default store under the output directory


def test_the_sweep_lock_is_never_opened_through_a_link(tmp_path):
    """A sweep directory holding a planted `.mlflow_parent.lock` link: the parent run is not
    created through it, and the link's target is not created or touched."""
    from headbayes.core.errors import HeadbayesError
    from headbayes.report.tracking import _parent_run

    target = tmp_path / "elsewhere.txt"
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / ".mlflow_parent.lock").symlink_to(target)
    with pytest.raises((OSError, HeadbayesError)):
        _parent_run(None, "0", sweep)  # refused before the client is ever used
    assert not target.exists() and not (sweep / "mlflow_parent.json").exists()


@pytest.mark.parametrize("uri, message", [
    ("sqlite:///", "in-memory database, which keeps nothing"),
    ("sqlite:///:memory:", "in-memory database, which keeps nothing")])
def test_a_store_that_keeps_nothing_is_refused(uri, message, monkeypatch):
    from headbayes.report.tracking import check_store

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(ConfigError, match=message):
        check_store(headbayes.compose(TINY).tracking)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    with pytest.raises(ConfigError, match="tracking.experiment: the MLflow experiment needs"):
        check_store(headbayes.compose([*TINY, "tracking.experiment=' '"]).tracking)


@pytest.mark.slow  # 7 s: importing MLflow into the test process; make test-all
def test_the_python_api_asks_the_store_before_sampling(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="does not answer"):
        headbayes.run(headbayes.compose(TINY), tmp_path / "run")
    assert not (tmp_path / "run").exists()
