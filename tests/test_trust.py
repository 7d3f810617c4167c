"""The run directory as a trust boundary: a directory someone hands you cannot make a command
touch a file outside it; self-contained runs; write failures, signals and bad sizes end with
their exit code and one line. Each test reproduces a case of the attack report (issue 14)."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import headbayes
from headbayes.config import budget
from headbayes.core import store
from headbayes.app.cli import run_cli
from run_edits import rerecord
from headbayes.core.errors import ConfigError
from headbayes.app.session import sample

SMALL = ["+experiment=sin_head", "sampler.warmup=100", "sampler.keep=50"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One finished small run (in this process), copied by each test that changes it."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    sample(headbayes.compose(SMALL), run_dir, lambda *a: None)
    assert run_cli(["report", str(run_dir), "--no-plots"]) == 0
    return run_dir


@pytest.fixture
def run_copy(finished, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(finished, target, symlinks=True)
    return target


def outside_file(tmp_path, name="victim.txt"):
    path = tmp_path / name
    path.write_text("precious")
    return path


def set_manifest(run_dir, change):
    path = run_dir / store.MANIFEST
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def test_report_never_writes_through_planted_links(run_copy, tmp_path, capsys):
    victims = [outside_file(tmp_path, f"victim{i}.txt") for i in range(3)]
    (run_copy / "metrics.json.tmp").symlink_to(victims[0])  # the old temporary name
    (run_copy / "metrics.json").unlink()
    (run_copy / "metrics.json").symlink_to(victims[1])  # the final name
    (run_copy / "trace.tmp.png").symlink_to(victims[2])
    assert run_cli(["report", str(run_copy)]) == 0
    assert all(v.read_text() == "precious" for v in victims)
    assert not (run_copy / "metrics.json").is_symlink()
    assert json.loads((run_copy / "metrics.json").read_text())["num_draws"] == 50  # 1 chain
    assert not list(run_copy.glob(".*.tmp"))  # no temporary file left behind


@pytest.mark.parametrize("name", ["../victim.txt", "/etc/hostname", "chain/../../victim.txt",
                                  "chain/part-00000.npz/../../../victim.txt"])
def test_manifest_names_outside_the_directory_are_refused(run_copy, tmp_path, name, capsys):
    outside_file(tmp_path)
    set_manifest(run_copy, lambda m: m["parts"][0].update(file=name))
    assert run_cli(["report", str(run_copy), "--no-plots"]) == 4
    assert "not a manifest headbayes writes" in capsys.readouterr().err


def test_resume_never_deletes_a_file_the_manifest_names_outside(run_copy, tmp_path, capsys):
    victim = outside_file(tmp_path)
    set_manifest(run_copy, lambda m: m["checkpoint"].update(state="../victim.txt",
                                                            next_step=0))
    assert run_cli(["resume", str(run_copy)]) == 4
    assert victim.read_text() == "precious"


@pytest.mark.parametrize("linked", ["chain", "run_config.json", "params.npz", ".hydra"])
def test_links_inside_the_directory_are_refused(finished, tmp_path, linked, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(finished, run_dir)
    if linked == ".hydra":  # a run made from Python has none; give it one pointing outside
        (tmp_path / "elsewhere").mkdir()
        (tmp_path / "elsewhere" / "config.yaml").write_text("seed: 7\n")
        (run_dir / "run_config.json").unlink()
        (run_dir / ".hydra").symlink_to(tmp_path / "elsewhere")
    else:
        moved = tmp_path / f"moved-{linked}"
        (run_dir / linked).rename(moved)
        (run_dir / linked).symlink_to(moved)
    assert run_cli(["report", str(run_dir), "--no-plots"]) == 4
    assert "symbolic link" in capsys.readouterr().err


CHECKED_BY_ITS_FILE_KEY = ('{"parts": [], "checkpoint": {"file": "chain/state-000000001.npz", '
                           '"state": "../victim.txt", "sha256": "' + "0" * 64 + '", '
                           '"next_step": 1, "counts": {}}}')


@pytest.mark.parametrize("content", ["[]", '{"parts": "x"}', '{"parts": [{"file": 3}]}',
                                     '{"parts": [], "checkpoint": {"state": 1}}',
                                     CHECKED_BY_ITS_FILE_KEY])
def test_a_manifest_of_the_wrong_shape_exits_4_without_traceback(run_copy, content, capsys):
    (run_copy / store.MANIFEST).write_text(content)
    assert run_cli(["report", str(run_copy), "--no-plots"]) == 4
    err = capsys.readouterr().err
    assert "Traceback" not in err and "manifest.json" in err


def test_report_verifies_the_checkpoint_checksum(run_copy, capsys):
    state = run_copy / json.loads((run_copy / store.MANIFEST).read_text())["checkpoint"]["state"]
    data = bytearray(state.read_bytes())
    data[-30] ^= 1
    state.write_bytes(bytes(data))
    assert run_cli(["report", str(run_copy), "--no-plots"]) == 4
    assert "checkpoint" in capsys.readouterr().err


def test_changed_frozen_leaves_are_measured_and_warned(run_copy, capsys):
    params = dict(np.load(run_copy / "params.npz"))
    params["hidden_layers.0.weight"] = params["hidden_layers.0.weight"] + np.float32(1e-3)
    np.savez(run_copy / "params.npz", **params)
    rerecord(run_copy)
    assert run_cli(["report", str(run_copy), "--no-plots"]) == 0
    figures = json.loads((run_copy / "metrics.json").read_text())
    assert figures["unmasked_var_max"] == pytest.approx(0.25e-6, rel=1e-3)  # ((1e-3)/2)^2
    assert "frozen leaves at the end of sampling differ" in figures["verdict"]


def test_a_run_killed_before_its_first_commit_resumes_bit_for_bit(finished, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(finished, run_dir)
    for name in ("chain", "meta.json", "metrics.json", "frozen_end.npz"):
        shutil.rmtree(run_dir / name) if name == "chain" else (run_dir / name).unlink()
    assert run_cli(["resume", str(run_dir)]) == 0
    original, resumed = store.load_chain(finished), store.load_chain(run_dir)
    for path in original:
        np.testing.assert_array_equal(original[path], resumed[path])


def write_csv(path, n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, (n, 2))
    y = np.sin(x[:, 0]) + 0.1 * rng.normal(size=n)
    path.write_text("a,b,y\n" + "".join(f"{p},{q},{r}\n" for (p, q), r in zip(x, y)))


def test_a_run_from_a_users_file_is_self_contained(tmp_path, monkeypatch, capsys):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    write_csv(work / "d.csv")
    monkeypatch.chdir(work)
    cfg = headbayes.compose(["data=csv", "data.path=d.csv", "data.target=y",
                             "sampler.warmup=50", "sampler.keep=20"])
    sample(cfg, work / "run", lambda *a: None)
    record = json.loads((work / "run" / "data.json").read_text())["files"]["path"]
    assert record["sha256"] == hashlib.sha256((work / "d.csv").read_bytes()).hexdigest()
    write_csv(work / "d.csv", seed=1)  # the user's file changes afterwards: no effect
    monkeypatch.chdir(elsewhere)  # a relative data.path means nothing here
    assert run_cli(["report", str(work / "run"), "--no-plots"]) == 0
    first = json.loads((work / "run" / "metrics.json").read_text())
    (work / "d.csv").unlink()
    assert run_cli(["report", str(work / "run"), "--no-plots"]) == 0
    assert json.loads((work / "run" / "metrics.json").read_text()) == first
    with open(work / "run" / "inputs" / "path.csv", "a") as f:
        f.write("1,2,3\n")  # the run's own copy edited
    assert run_cli(["report", str(work / "run"), "--no-plots"]) == 4
    assert "has changed since the run" in capsys.readouterr().err
    assert run_cli(["resume", str(work / "run")]) == 4


def cli(args, tmp_path, limit_kib=None):
    """The CLI in a subprocess, optionally under a file-size limit (`ulimit -f`, KiB)."""
    env = {**os.environ, "HEADBAYES_OUTPUT_DIR": str(tmp_path / "outputs")}
    command = [sys.executable, "-m", "headbayes", *map(str, args)]
    if limit_kib:
        command = ["bash", "-c", f'ulimit -f {limit_kib} && exec "$0" "$@"', *command]
    return subprocess.run(command, env=env, capture_output=True, text=True)


@pytest.mark.slow
def test_a_file_size_limit_is_exit_4_naming_the_path_with_nothing_left(run_copy, tmp_path):
    result = cli(["report", run_copy], tmp_path, limit_kib=20)
    assert result.returncode == 4, result.stderr
    assert "cannot write" in result.stderr and str(run_copy) in result.stderr
    assert "Traceback" not in result.stderr
    pytest.importorskip("arviz")
    result = cli(["export", run_copy], tmp_path, limit_kib=20)
    assert result.returncode == 4 and "file-size limit" in result.stderr, result.stderr
    assert not list(run_copy.glob(".*.tmp")) and not (run_copy / "inference_data.nc").exists()


@pytest.mark.slow
def test_a_refused_writer_changes_nothing(finished, tmp_path):
    run_dir = tmp_path / "run"
    result = cli(["run", *SMALL, f"hydra.run.dir={run_dir}"], tmp_path)
    assert result.returncode == 0, result.stderr
    holder = subprocess.Popen(["sleep", "60"])  # a live process holds the lock
    try:
        (run_dir / ".lock").write_text(str(holder.pid))
        before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
        for args in (["run", *SMALL, "seed=3", f"hydra.run.dir={run_dir}"],
                     ["resume", run_dir]):
            result = cli(args, tmp_path)
            assert result.returncode == 2 and f"process {holder.pid}" in result.stderr
        after = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
        assert after == before  # .hydra/overrides.yaml and status.json included
    finally:
        holder.kill()
        holder.wait()


def test_ctrl_c_during_start_up_exits_130_without_traceback(tmp_path):
    env = {**os.environ, "HEADBAYES_OUTPUT_DIR": str(tmp_path / "outputs")}
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "headbayes", "run", *SMALL,
                             f"hydra.run.dir={run_dir}"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (run_dir / "run_config.json").exists() and time.time() < deadline:
        time.sleep(0.01)  # in start-up until the run writes its config; then compiling
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and f"headbayes resume {run_dir}" in err
    assert json.loads((run_dir / "status.json").read_text())["exit_code"] == 130
    assert run_cli(["resume", str(run_dir)]) == 0


@pytest.mark.parametrize("override", ["seed=4294967296", "data.seed=-1", "model.seed=-5",
                                      "sampler.keep=99999999999999999999"])
def test_seeds_and_counts_are_checked_before_anything_runs(override, capsys):
    assert run_cli(["run", *SMALL, override]) == 2
    assert override.split("=")[0] in capsys.readouterr().err


def test_memory_estimate_refuses_what_cannot_fit():
    cfg = headbayes.compose(SMALL + ["sampler.keep=1000000"])
    shapes = {"hidden_layers.0.weight": (16, 1), "output_layer.weight": (1, 16),
              "output_layer.bias": (1,)}
    sampled = ["output_layer.weight", "output_layer.bias"]
    parts = budget.memory_estimate(cfg, shapes, sampled)
    assert parts["kept draws"] == 12 * 1_000_000 * cfg.sampler.num_chains * 17
    budget.check_memory(cfg, shapes, sampled, available=sum(parts.values()))  # just fits
    with pytest.raises(ConfigError, match="the largest part, .* is the kept draws"):
        budget.check_memory(cfg, shapes, sampled, available=sum(parts.values()) - 1)


def test_memory_estimate_counts_the_hessian_start_of_hmc_and_nuts():
    cfg = headbayes.compose(SMALL + ["sampler=nuts", "sampler.mass_init=hessian"])
    shapes = {"hidden_layers.0.weight": (3000, 1), "output_layer.weight": (1, 3000)}
    sampled = list(shapes)
    parts = budget.memory_estimate(cfg, shapes, sampled)
    assert parts["Hessian start"] == 12 * cfg.sampler.num_chains * 6000**2
    with pytest.raises(ConfigError, match=r"is the Hessian start: .*sampler.mass_init=identity"):
        budget.check_memory(cfg, shapes, sampled, available=sum(parts.values()) - 1)
    identity = headbayes.compose(SMALL + ["sampler=nuts"])
    assert budget.memory_estimate(identity, shapes, sampled)["Hessian start"] == 0


def test_plots_thin_any_number_of_points():
    from headbayes.report.plots import MAX_POINTS, _thinned

    assert list(_thinned(5)) == [0, 1, 2, 3, 4]
    shown = _thinned(3_000_000)
    assert len(shown) == MAX_POINTS and shown[0] == 0 and shown[-1] == 2_999_999


def test_a_text_column_is_left_out_of_the_inputs_with_a_note(tmp_path, monkeypatch):
    from headbayes.datasets import describe, make_dataset

    rows = "".join(f"{i / 10},{(i * 7) % 5},row{i},{i % 3}\n" for i in range(20))
    (tmp_path / "t.csv").write_text("a,b,name,y\n" + rows)
    monkeypatch.chdir(tmp_path)
    data = make_dataset(headbayes.compose(["data=csv", "data.path=t.csv",
                                           "data.target=y"]).data)
    assert data.inputs == ("a", "b") and data.ignored == ("name",)
    assert describe(data)["ignored_columns"] == ["name"]
    with pytest.raises(ConfigError, match=r"t.csv line 2, column 'name': 'row0' is not a number"):
        make_dataset(headbayes.compose(["data=csv", "data.path=t.csv", "data.target=y",
                                        "data.inputs=[a,name]"]).data)


def test_an_error_in_a_copied_file_names_the_users_file(tmp_path, monkeypatch):
    (tmp_path / "bad.csv").write_text("a,y\n" + "".join(f"{i},{i}\n" for i in range(9))
                                      + "oops,1\n")
    monkeypatch.chdir(tmp_path)
    cfg = headbayes.compose(["data=csv", "data.path=bad.csv", "data.target=y"])
    with pytest.raises(ConfigError) as raised:
        sample(cfg, tmp_path / "run", lambda *a: None)
    assert f"{tmp_path / 'bad.csv'} line 11, column 'a': 'oops'" in str(raised.value)
    assert "inputs/path.csv" not in str(raised.value)


def test_a_swallowed_signal_still_ends_the_command(finished, tmp_path, monkeypatch, capsys):
    """Python ignores exceptions raised in finalizers, so a SignalStop raised there is lost;
    the recorded signal still ends the command with its code (the issue saw exit 0 once)."""
    import headbayes.app.cli as cli_module
    from headbayes.core.errors import SIGNALS_RECEIVED

    def report_then_swallowed_sigterm(args):
        SIGNALS_RECEIVED.append(signal.SIGTERM)  # what the handler records before raising
        return 0  # ... and its exception vanished inside a finalizer

    monkeypatch.setitem(cli_module.COMMANDS, "report", report_then_swallowed_sigterm)
    assert run_cli(["report", str(finished)]) == 143
    assert "stopped by signal 15" in capsys.readouterr().err
    assert not SIGNALS_RECEIVED  # cleared for the next command


def test_a_data_path_in_a_handed_config_is_never_read(run_copy, tmp_path, capsys):
    """A run directory whose config names a csv it holds no copy of (the user's private
    file, say) is refused by report and resume: nothing outside the directory is read."""
    private = tmp_path / "private.csv"
    write_csv(private)
    config = json.loads((run_copy / "run_config.json").read_text())
    config["data"] = {"name": "csv", "path": str(private), "target": "y"}
    (run_copy / "run_config.json").write_text(json.dumps(config))
    rerecord(run_copy)
    for command in (["report", str(run_copy), "--no-plots"], ["resume", str(run_copy)]):
        assert run_cli(command) == 4
        assert "refusing to read a file outside the run directory" in capsys.readouterr().err
    assert not (run_copy / "inputs").exists()


def test_a_signal_inside_a_finalizer_is_recorded_without_a_traceback(monkeypatch):
    """SIGINT can land while Python runs a finalizer or a gc callback (JAX registers one);
    the SignalStop raised there can only be ignored by Python, which hands it to
    sys.unraisablehook ('Exception ignored ... Traceback' by default). It must be recorded (the
    command then stops) and never reach that hook."""
    import gc

    from headbayes.app.cli import _signals_stop
    from headbayes.core.errors import SIGNALS_RECEIVED

    reached = []
    monkeypatch.setattr(sys, "unraisablehook", lambda report: reached.append(report.exc_value))

    class Finalized:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)

    with _signals_stop():
        Finalized()
        gc.collect()
        recorded = list(SIGNALS_RECEIVED)
    assert recorded == [signal.SIGINT]
    assert reached == []


GOOD = {"stages": {"startup": 1.0, "warmup": 2.5}, "wall_s": 3.6}


@pytest.mark.parametrize("timings", [
    {**GOOD, "wall_s": float("nan")}, {**GOOD, "wall_s": -1.0}, {**GOOD, "wall_s": True},
    {**GOOD, "wall_s": "3.6"}, {**GOOD, "wall_s": 1e300}, {**GOOD, "stages": []},
    {**GOOD, "stages": {"warmup": None}}, {**GOOD, "stages": {"x" * 65: 1.0}},
    {**GOOD, "stages": {f"s{i}": 1.0 for i in range(65)}}, {**GOOD, "earlier": {}},
    {**GOOD, "earlier": [{**GOOD, "extra": 1}]}, {**GOOD, "earlier": [GOOD, 7]}, "timings",
])
def test_a_stopped_runs_timings_are_carried_only_when_well_formed(timings):
    """status.json's timings of a stopped run reach the resumed run's meta.json
    (`timings.earlier`) only as names and finite seconds: anything else is dropped."""
    from headbayes.core.timing import earlier_processes

    assert earlier_processes({"timings": timings}) == []
    assert earlier_processes({"timings": {**GOOD, "earlier": [GOOD]}}) == [GOOD, GOOD]
    assert earlier_processes({"status": "ok"}) == [] and earlier_processes([]) == []
