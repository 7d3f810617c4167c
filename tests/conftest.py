import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def shared_compile_cache(tmp_path_factory):
    """One JAX compilation cache for the whole session, outside the repository: runs of the
    same structure (most tests run sin_head) load their programs instead of compiling them."""
    if "HEADBAYES_COMPILE_CACHE" not in os.environ:
        os.environ["HEADBAYES_COMPILE_CACHE"] = str(tmp_path_factory.mktemp("jax_cache"))
    yield


@pytest.fixture
def headbayes(tmp_path, monkeypatch):
    """Run the CLI (outputs under tmp_path); returns a CompletedProcess. `run` (Hydra, global
    state) goes to a subprocess, as a user types it; the other commands run in this process
    (`headbayes.app.cli.run_cli`, the same code after the same dispatch, without a 2 s start-up),
    with its stdout and stderr captured."""

    def run(*args, cwd=None, check_code=None):
        args = [str(a) for a in args]
        if args[:1] == ["run"] or args[:1] == ["-m"]:
            env = {**os.environ, "HEADBAYES_OUTPUT_DIR": str(tmp_path / "outputs"),
                   "COLUMNS": "200"}
            result = subprocess.run([sys.executable, "-m", "headbayes", *args],
                                    capture_output=True, text=True, cwd=cwd or tmp_path,
                                    env=env)
        else:
            result = _in_process(args, cwd or tmp_path, tmp_path / "outputs", monkeypatch)
        if check_code is not None:
            assert result.returncode == check_code, result.stdout + result.stderr
        return result

    return run


@pytest.fixture(autouse=True, scope="session")
def _no_mlflow_telemetry():
    """MLflow 3 sends usage telemetry from a thread; the tests (and the processes they start)
    never reach the network for it."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


@pytest.fixture(autouse=True, scope="session")
def _source_key(tmp_path_factory):
    """This account's key for model source records (`models.code`), kept out of ~/.config;
    the commands the tests start in other processes inherit it."""
    os.environ["HEADBAYES_SOURCE_KEY"] = str(tmp_path_factory.mktemp("key") / "source-key")


@pytest.fixture
def refused_run(tmp_path, monkeypatch):
    """`headbayes run ARGS` in this process, for a command line that the pre-flight check
    refuses before Hydra starts (so Hydra's global state is never touched): 2 s less than a
    process each. Returns a CompletedProcess."""
    def run(*args, cwd=None):
        from headbayes.app import hydra_task

        monkeypatch.setenv("HEADBAYES_PLOT_WORKER", "0")  # no worker process for a refusal

        def hydra_must_not_start():
            raise AssertionError(f"the pre-flight check let {args} through to Hydra")

        monkeypatch.setattr(hydra_task, "main", hydra_must_not_start)
        return _in_process(["run", *map(str, args)], cwd or tmp_path, tmp_path / "outputs",
                           monkeypatch)

    return run


def _in_process(args, cwd, output_dir, monkeypatch) -> subprocess.CompletedProcess:
    from headbayes.app.cli import run_cli

    out, err = io.StringIO(), io.StringIO()
    with monkeypatch.context() as patch:
        patch.setenv("HEADBAYES_OUTPUT_DIR", str(output_dir))
        patch.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = run_cli(args)
            except SystemExit as e:  # argparse: --help, usage errors
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


@pytest.fixture
def run_in_process(tmp_path):
    """Run `+experiment=...` overrides in this process; returns (figures, extras, run_dir)."""
    from omegaconf import OmegaConf

    import headbayes

    from headbayes.app.session import sample
    from headbayes.report.write import compute_report

    def run(*overrides, name="run"):
        cfg = headbayes.compose(list(overrides))
        run_dir = tmp_path / name
        (run_dir / ".hydra").mkdir(parents=True)
        OmegaConf.save(OmegaConf.structured(cfg), run_dir / ".hydra" / "config.yaml")
        sample(cfg, run_dir, lambda *a: None)
        figures, extras = compute_report(run_dir)
        return figures, extras, run_dir

    return run


def make_mlp(seed: int = 0, in_features: int = 1, out_features: int = 1, **options):
    """The built-in MLP with `options` (MLPOptions keys), built as a run builds it."""
    import equinox as eqx
    import jax

    from headbayes.models.mlp import MLPOptions
    from headbayes.models.mlp import make_mlp as build

    return eqx.filter_jit(lambda: build(MLPOptions(seed=seed, **options),
                                        jax.random.PRNGKey(seed), in_features, out_features))()
