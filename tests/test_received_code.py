"""A run directory's config never chooses code to run: a module inside the directory (or one
holding it) is never imported, whatever its layout; a standard or installed one is refused; a
module of the working directory is imported only when its source is the one the run recorded,
or when the user vouches for its folder with --code."""

import json
import os
import shutil
import sys

import pytest

import headbayes
from headbayes.app.cli import run_cli
from headbayes.app.session import owned, sample
from headbayes.core.errors import ConfigError
from headbayes.models.code import _digest
from run_edits import rerecord

TINY_NET = '''
import equinox as eqx
import jax


class Net(eqx.Module):
    hidden: eqx.nn.Linear
    output_layer: eqx.nn.Linear

    def __call__(self, x):
        return self.output_layer(jax.numpy.tanh(self.hidden(x)))


def make(*, key, in_features, out_features):
    k1, k2 = jax.random.split(key)
    return Net(eqx.nn.Linear(in_features, 8, key=k1), eqx.nn.Linear(8, out_features, key=k2))
'''

EVIL = '''
import pathlib
pathlib.Path({marker!r}).write_text("imported")
def make(**kwargs):
    raise SystemExit("called")
'''

SMALL = ["sampler.warmup=20", "sampler.keep=10", "sampler.num_chains=1", "report.plots=false"]


def own_model_run(root, module):
    """A finished run of `module`.make (a file in `root`, the working directory)."""
    root.mkdir(parents=True)
    (root / f"{module}.py").write_text(TINY_NET)
    (root / "configs" / "model").mkdir(parents=True)
    (root / "configs" / "model" / "tiny.yaml").write_text(f"_target_: {module}.make\n")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        with owned(root / "run"):
            sample(headbayes.compose(["model=tiny", *SMALL]), root / "run", lambda *a: None)
    finally:
        os.chdir(cwd)
    return root / "run"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished run of the built-in model."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    with owned(run_dir):
        sample(headbayes.compose(SMALL), run_dir, lambda *a: None)
    return run_dir


def received(finished, place, target, marker, package=False):
    """A copy of `finished` at `place` that holds evil.py (writing `marker` when imported) and
    whose config names `target`, with a model_source.json that matches the directory's own
    source (as a stranger would write it)."""
    shutil.copytree(finished, place)
    (place / "evil.py").write_text(EVIL.format(marker=str(marker)))
    if package:
        (place / "__init__.py").write_text("")
    config = json.loads((place / "run_config.json").read_text())
    config["model"] = {"_target_": target, "seed": 0}
    (place / "run_config.json").write_text(json.dumps(config))
    top = target.split(".")[0]
    record = {"module": top, "sha256": _digest([place.resolve()])}
    (place / "model_source.json").write_text(json.dumps(record))
    rerecord(place)
    return place


COMMANDS = [["report", "{run}", "--no-plots"], ["resume", "{run}"], ["export", "{run}"],
            ["predict", "{run}", "--input", "{inputs}"]]


@pytest.mark.parametrize("layout", ["namespace", "package", "from_above", "symlink", "inside"])
def test_a_module_a_run_directory_brings_is_never_imported(finished, tmp_path, monkeypatch,
                                                           capsys, layout):
    downloads, marker = tmp_path / "downloads", tmp_path / "IMPORTED"
    downloads.mkdir()
    target, cwd = {"namespace": ("recv.evil.make", downloads),
                   "package": ("recv.evil.make", downloads),
                   "from_above": ("downloads.recv.evil.make", tmp_path),
                   "symlink": ("mods.evil.make", downloads),
                   "inside": ("evil.make", downloads / "recv")}[layout]
    run = received(finished, downloads / "recv", target, marker, package=layout == "package")
    if layout == "symlink":
        (downloads / "mods").symlink_to(run, target_is_directory=True)
    (tmp_path / "in.csv").write_text("x\n0.5\n")
    monkeypatch.chdir(cwd)
    for command in COMMANDS:
        args = [a.format(run=run, inputs=tmp_path / "in.csv") for a in command]
        assert run_cli(args) == 4, args
        assert "never imported from a run directory" in capsys.readouterr().err
    with pytest.raises(Exception, match="never imported from a run directory"):
        headbayes.load_run(run).predict([[0.5]])
    assert not marker.exists()
    assert "evil" not in sys.modules


@pytest.mark.parametrize("target", ["json.dumps", "this.s", "hydra.utils.instantiate",
                                    "headbayes.app.api.run", "builtins.exec", "sys.exit"])
def test_standard_and_installed_modules_are_refused(finished, tmp_path, capsys, target):
    """Even with a digest of their (public) source recorded: `hydra.utils.instantiate` would
    call whatever the config's keys name. `this` prints when imported: it is not."""
    run = shutil.copytree(finished, tmp_path / "run")
    config = json.loads((run / "run_config.json").read_text())
    config["model"] = {"_target_": target, "seed": 0}
    (run / "run_config.json").write_text(json.dumps(config))
    rerecord(run)
    assert run_cli(["report", str(run), "--no-plots"]) == 4
    err = capsys.readouterr().err
    assert "may not choose such code" in err or "never imported from a run directory" in err, err
    assert "this" not in sys.modules or target != "this.s"


def test_a_module_that_is_nowhere_is_a_config_error(finished, tmp_path, capsys):
    run = shutil.copytree(finished, tmp_path / "run")
    config = json.loads((run / "run_config.json").read_text())
    config["model"] = {"_target_": "nosuchmodule.make", "seed": 0}
    (run / "run_config.json").write_text(json.dumps(config))
    rerecord(run)
    assert run_cli(["report", str(run), "--no-plots"]) == 2
    assert "no module 'nosuchmodule' to import" in capsys.readouterr().err


def test_an_own_model_reports_until_its_source_changes_then_needs_code(tmp_path, monkeypatch,
                                                                        capsys):
    root = tmp_path / "user"
    run = own_model_run(root, "tiny_net_changes")
    record = json.loads((run / "model_source.json").read_text())
    assert record["module"] == "tiny_net_changes" and len(record["sha256"]) == 64
    monkeypatch.chdir(root)
    assert run_cli(["report", str(run), "--no-plots"]) == 0  # one's own run: no flag
    with open(root / "tiny_net_changes.py", "a") as f:
        f.write("\n# edited after the run\n")
    assert run_cli(["report", str(run), "--no-plots"]) == 2
    assert "is not the source the run was made with; pass --code DIR" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="pass --code DIR"):
        headbayes.load_run(run).predict([[0.5]])
    assert run_cli(["report", str(run), "--no-plots", "--code", str(root)]) == 0
    assert headbayes.load_run(run, code=[root]).predict([[0.5]])["mean"].shape == (1,)


def test_a_run_without_a_source_record_needs_code(tmp_path, monkeypatch, capsys):
    root = tmp_path / "user"
    run = own_model_run(root, "tiny_net_unrecorded")
    (run / "model_source.json").unlink()  # a stranger's directory, or an older release's
    rerecord(run)  # as its sender would (a removed file the record names is refused)
    monkeypatch.chdir(root)
    assert run_cli(["report", str(run), "--no-plots"]) == 2
    assert "records no digest of its source" in capsys.readouterr().err
    assert run_cli(["report", str(run), "--no-plots", "--code", str(tmp_path / "nope")]) == 2
    assert "--code: " in capsys.readouterr().err
    assert run_cli(["report", str(run), "--no-plots", "--code", "."]) == 0


def test_the_run_directory_shadows_nothing_even_from_inside_it(tmp_path, monkeypatch, capsys):
    """Run from inside the run directory, which holds a module of the model's name and one
    that the model imports by a plain name: the vouched folder's model is used, and the
    directory's files are never imported."""
    root = tmp_path / "user"
    run = own_model_run(root, "tiny_net_shadowed")
    marker = tmp_path / "IMPORTED"
    for name in ("tiny_net_shadowed.py", "tiny_layers.py"):
        (run / name).write_text(EVIL.format(marker=str(marker)))
    monkeypatch.chdir(run)
    assert run_cli(["report", ".", "--no-plots", "--code", str(root)]) == 0
    with open(root / "tiny_net_shadowed.py", "a") as f:
        f.write("\nimport tiny_layers  # a plain import the run directory could answer\n")
    sys.modules.pop("tiny_net_shadowed", None)
    assert run_cli(["report", ".", "--no-plots", "--code", str(root)]) in (2, 4)
    assert "never imported from a run directory" in capsys.readouterr().err
    assert not marker.exists()


def test_a_run_written_before_checksums_resumes_and_reports(finished, tmp_path):
    run = shutil.copytree(finished, tmp_path / "run")
    for name in ("checksums.json", "chain", "meta.json", "frozen_end.npz"):  # killed early
        shutil.rmtree(run / name) if name == "chain" else (run / name).unlink()
    assert run_cli(["resume", str(run)]) == 0  # rewrites mask.json: no partial record
    assert not (run / "checksums.json").exists()
    assert run_cli(["report", str(run), "--no-plots"]) == 0


def test_a_file_beside_a_received_run_with_a_forged_record_is_not_imported(
        finished, tmp_path, monkeypatch, capsys):
    """A bundle holding a run directory and, beside it, a Python file whose digest the
    directory's record gives: the record is not this account's, so nothing is imported."""
    bundle, marker = tmp_path / "bundle", tmp_path / "IMPORTED"
    run = shutil.copytree(finished, bundle / "run")
    (bundle / "beside_run.py").write_text(EVIL.format(marker=str(marker)))
    config = json.loads((run / "run_config.json").read_text())
    config["model"] = {"_target_": "beside_run.make", "seed": 0}
    (run / "run_config.json").write_text(json.dumps(config))
    digest = _digest([(bundle / "beside_run.py").resolve()])
    for signature in (None, "0" * 64):
        record = {"module": "beside_run", "sha256": digest, "signature": signature}
        (run / "model_source.json").write_text(json.dumps(record))
        rerecord(run)
        monkeypatch.chdir(bundle)
        assert run_cli(["report", "run", "--no-plots"]) == 2
        assert "was not made by this account" in capsys.readouterr().err
    assert not marker.exists()


PLANTED = "import pathlib\npathlib.Path({marker!r}).write_text('imported')\n"


def test_the_plot_worker_imports_nothing_from_the_working_directory(tmp_path, monkeypatch):
    """Found in round 4: the worker started with `python -c`, whose path starts with the
    working directory: a json.py beside a received run ran in it."""
    from headbayes.report import plotworker

    marker = tmp_path / "IMPORTED"
    (tmp_path / "json.py").write_text(PLANTED.format(marker=str(marker)))
    monkeypatch.chdir(tmp_path)
    worker = plotworker.start()
    worker.process.stdin.close()  # no request: it imports its libraries, then ends
    worker.process.wait(timeout=60)
    assert not marker.exists()


def test_reading_a_run_leaves_the_working_directory_off_the_import_path(finished, tmp_path,
                                                                        monkeypatch, capsys):
    """Found in round 4: every command that read a run directory put the working directory
    first on sys.path for good, so a library imported later (matplotlib, arviz) came from the
    download folder."""
    marker = tmp_path / "IMPORTED"
    (tmp_path / "fakelib.py").write_text(PLANTED.format(marker=str(marker)))
    monkeypatch.chdir(tmp_path)
    before = list(sys.path)
    assert run_cli(["report", str(finished), "--no-plots", "--code", str(tmp_path)]) == 0
    assert sys.path == before
    with pytest.raises(ImportError):
        __import__("fakelib")
    assert not marker.exists()


def test_python_m_headbayes_imports_nothing_from_the_working_directory(tmp_path):
    """`python -m` puts the working directory first on the import path: a json.py in the
    folder of a received run ran as soon as headbayes imported json."""
    import subprocess

    marker = tmp_path / "IMPORTED"
    (tmp_path / "json.py").write_text(PLANTED.format(marker=str(marker)))
    subprocess.run([sys.executable, "-m", "headbayes", "--help"], cwd=tmp_path, check=True,
                   capture_output=True)
    assert not marker.exists()
