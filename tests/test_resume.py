"""Durable runs: kill -9 mid-run, `headbayes resume`, and the uninterrupted chain bit for bit."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from headbayes.core import store

LONG = ["+experiment=sin_head", "sampler.warmup=2000000", "sampler.keep=1000",
        "sampler.thin=1000"]


def start_run(run_dir, tmp_path, overrides=LONG):
    env = {**os.environ, "HEADBAYES_OUTPUT_DIR": str(tmp_path / "outputs")}
    return subprocess.Popen([sys.executable, "-m", "headbayes", "run", *overrides,
                             f"hydra.run.dir={run_dir}"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def wait_for_checkpoint(run_dir, timeout=60, after_step=-1):
    manifest = run_dir / store.MANIFEST
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            checkpoint = json.loads(manifest.read_text()).get("checkpoint")
            if checkpoint and checkpoint["next_step"] > after_step:
                return
        except (OSError, json.JSONDecodeError):
            pass
        time.sleep(0.05)
    raise AssertionError("no checkpoint was committed")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted run of LONG, shared by the kill tests."""
    root = tmp_path_factory.mktemp("reference")
    env = {**os.environ, "HEADBAYES_OUTPUT_DIR": str(root / "outputs")}
    subprocess.run([sys.executable, "-m", "headbayes", "run", *LONG,
                    f"hydra.run.dir={root / 'run'}"], env=env, check=True, capture_output=True)
    return root / "run"


@pytest.mark.slow  # 25 s of multi-million-step runs; `make test` resumes bit for bit in test_trust
@pytest.mark.parametrize("continue_with", ["resume", "rerun"])
def test_kill_and_resume_is_bit_identical(headbayes, tmp_path, reference, continue_with):
    """`rerun` is what SLURM does after a preemption: the same job, same run directory."""
    rng = random.Random(0 if continue_with == "resume" else 1)
    killed = tmp_path / "killed"
    proc = start_run(killed, tmp_path)
    wait_for_checkpoint(killed)
    time.sleep(rng.uniform(0.0, 0.3))  # well before the remaining ~2M steps can finish
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    steps_at_kill = json.loads((killed / store.MANIFEST).read_text())["checkpoint"]["next_step"]
    assert steps_at_kill < 3_000_000  # it was killed before the end
    if continue_with == "resume":
        headbayes("resume", killed, check_code=0)
    else:
        headbayes("run", *LONG, f"hydra.run.dir={killed}", check_code=0)
    expected, got = store.load_chain(reference), store.load_chain(killed)
    for path in expected:
        np.testing.assert_array_equal(got[path], expected[path])
    metrics = json.loads((killed / "metrics.json").read_text())
    assert metrics == json.loads((reference / "metrics.json").read_text())
    assert json.loads((killed / "meta.json").read_text())["resumed_from_step"] == steps_at_kill
    # resuming a finished run changes nothing
    manifest = (killed / store.MANIFEST).read_bytes()
    headbayes("resume", killed, check_code=0)
    assert (killed / store.MANIFEST).read_bytes() == manifest


@pytest.mark.slow  # about 4-6 s: make test-all
def test_a_run_stopped_after_its_last_commit_resumes(headbayes, tmp_path):
    """Round 5 (B3): SIGTERM after the last chunk, before meta.json, said 'continue with
    headbayes resume', which then always exited 4 (missing meta.json)."""
    run_dir = tmp_path / "run"
    headbayes("run", *SHORT, f"hydra.run.dir={run_dir}", check_code=0)
    finished = {name: (run_dir / name).read_bytes() for name in ("metrics.json",
                                                                 "frozen_end.npz")}
    checksums = json.loads((run_dir / "checksums.json").read_text())
    for name in ("meta.json", "metrics.json", "frozen_end.npz"):  # not written yet then
        (run_dir / name).unlink()
        checksums.pop(name, None)
    (run_dir / "checksums.json").write_text(json.dumps(checksums))
    (run_dir / "status.json").write_text(json.dumps(
        {"status": "failed", "exit_code": 143, "message": "stopped by signal 15"}))
    headbayes("resume", run_dir, check_code=0)
    for name, content in finished.items():
        assert (run_dir / name).read_bytes() == content, name
    assert json.loads((run_dir / "status.json").read_text())["status"] == "ok"


@pytest.mark.slow  # about 4-6 s: make test-all
def test_resume_refuses_a_corrupt_chain(headbayes, tmp_path):
    run_dir = tmp_path / "run"
    headbayes("run", "+experiment=sin_head", "sampler.warmup=10", "sampler.keep=5",
              f"hydra.run.dir={run_dir}", check_code=0)
    manifest = json.loads((run_dir / store.MANIFEST).read_text())
    manifest["checkpoint"]["next_step"], manifest["parts"] = 5, []  # stopped in warmup
    (run_dir / store.MANIFEST).write_text(json.dumps(manifest))
    state = run_dir / manifest["checkpoint"]["state"]
    state.write_bytes(b"garbage")
    result = headbayes("resume", run_dir)
    assert result.returncode == 4 and "corrupt checkpoint file" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow  # 8 s: make test-all
def test_sigterm_commits_then_exits_143_and_resume_finishes(headbayes, tmp_path, monkeypatch):
    # restored after `resume --profile`
    monkeypatch.setattr("headbayes.app.session.PROFILE", False)
    run_dir = tmp_path / "stopped"
    proc = start_run(run_dir, tmp_path, ["+experiment=sin_head", "sampler.warmup=1200000",
                                         "sampler.keep=100", "sampler.thin=100"])
    wait_for_checkpoint(run_dir, after_step=0)  # in the chunk loop: the signal waits for a commit
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    status = json.loads((run_dir / "status.json").read_text())
    assert status["exit_code"] == 143 and "headbayes resume" in status["message"]
    assert not (run_dir / ".lock").exists()
    stopped = status["timings"]  # the stopped process's seconds, up to its last commit
    assert stopped["earlier"] == [] and stopped["stages"]["warmup"] > 0
    assert sum(stopped["stages"].values()) == pytest.approx(stopped["wall_s"], rel=0.05)
    resumed = headbayes("resume", "--profile", run_dir, check_code=0)
    assert store.load_chain(run_dir)["output_layer.bias"].shape == (1, 100, 1)
    assert (f"stopped processes before this one: 1, {stopped['wall_s']:.2f} s"
            in resumed.stdout)
    timings = json.loads((run_dir / "meta.json").read_text())["timings"]
    assert timings["earlier"] == [{"stages": stopped["stages"], "wall_s": stopped["wall_s"]}]
    assert "timings" not in json.loads((run_dir / "status.json").read_text())  # now "ok"


@pytest.mark.slow  # about 4-6 s: make test-all
def test_a_second_writer_is_refused(headbayes, tmp_path):
    run_dir = tmp_path / "run"
    headbayes("run", "+experiment=sin_head", "sampler.warmup=10", "sampler.keep=5",
              f"hydra.run.dir={run_dir}", check_code=0)
    holder = subprocess.Popen(["sleep", "60"])  # a live process holds it
    try:
        (run_dir / ".lock").write_text(str(holder.pid))
        result = headbayes("resume", run_dir)
        assert result.returncode == 2 and f"being written by process {holder.pid}" in (
            result.stderr)
    finally:
        holder.kill()
        holder.wait()
    (run_dir / ".lock").write_text("999999999")  # a process that does not exist: stale
    headbayes("resume", run_dir, check_code=0)


def test_write_failure_names_the_path_and_keeps_the_old_file(tmp_path):
    import pytest

    from headbayes.core.errors import RunDirError

    target = tmp_path / "kept.json"
    store.write_json(target, {"a": 1})
    (tmp_path / "blocker").write_text("a file where a directory should be")
    with pytest.raises(RunDirError, match=r"cannot write .*blocker/x.json: .*errno"):
        store.write_json(tmp_path / "blocker" / "x.json", {"b": 2})
    assert json.loads(target.read_text()) == {"a": 1}


SHORT = ["+experiment=sin_head", "sampler.warmup=100", "sampler.keep=50"]


@pytest.mark.slow  # 6 s: make test-all
def test_resume_refuses_changed_settings_and_lists_them(headbayes, tmp_path):
    run_dir = tmp_path / "run"
    headbayes("run", *SHORT, f"hydra.run.dir={run_dir}", check_code=0)
    manifest = (run_dir / store.MANIFEST).read_bytes()
    result = headbayes("resume", run_dir, "sampler.step_size=0.002", "seed=0", "seed=3")
    assert result.returncode == 2
    assert "sampler.step_size (saved 0.001, given 0.002)" in result.stderr
    assert "seed (saved 0, given 3)" in result.stderr
    assert (run_dir / store.MANIFEST).read_bytes() == manifest
    headbayes("resume", run_dir, "sampler.step_size=0.001", check_code=0)  # same value: fine
    assert headbayes("resume", run_dir, "sampler.stepsize=1").returncode == 2
    moved = headbayes("resume", run_dir, f"hydra.run.dir={tmp_path}/x")  # P2 (round 5)
    assert moved.returncode == 2 and "takes no hydra.* override" in moved.stderr
    group = headbayes("resume", run_dir, "sampler=nuts")  # B13 (round 5): a traceback
    assert group.returncode == 2 and "'sampler=nuts' chooses a config group's option" in \
        group.stderr and "Traceback" not in group.stderr


@pytest.mark.slow  # about 4-6 s: make test-all
def test_a_new_run_never_overwrites_another_runs_chain(headbayes, tmp_path):
    run_dir = tmp_path / "run"
    headbayes("run", *SHORT, f"hydra.run.dir={run_dir}", check_code=0)
    before = {p: p.read_bytes() for p in [run_dir / store.MANIFEST, run_dir / "status.json",
                                          run_dir / "metrics.json", run_dir / ".hydra/config.yaml"]}
    result = headbayes("run", *SHORT, "sampler.thin=3", f"hydra.run.dir={run_dir}")
    assert result.returncode == 2
    assert "already holds a run with other settings: sampler.thin (saved 2, given 3)" in (
        result.stderr)
    for path, content in before.items():
        assert path.read_bytes() == content, path


ENDLESS_CALL = """
import sys
import jax
from jax import lax
from headbayes.app.session import owned
from headbayes.job.signals import stop_requests

endless = jax.jit(lambda: lax.while_loop(lambda v: v >= 0, lambda v: v + 1.0, 0.0))
program = endless.lower().compile()
with owned(sys.argv[1]), stop_requests():
    print("inside", flush=True)
    program()  # never returns: v + 1 stops growing at 2**24 and stays >= 0
"""


@pytest.mark.slow  # 4 s: make test-all
def test_a_second_signal_ends_the_process_inside_a_compiled_call(tmp_path):
    """Python handlers wait while the main thread is inside a compiled call; the watching
    thread does not: the second SIGTERM ends a call that would never return, and the run's
    status.json says so (k03: it was missing)."""
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", ENDLESS_CALL, str(run_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "inside\n"
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert proc.poll() is None  # the first one waits for the call to end
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 143
        assert "signal 15 again: stopping now" in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
    status = json.loads((run_dir / "status.json").read_text())
    assert status["exit_code"] == 143
    assert f"stopped by signal 15; continue with: headbayes resume {run_dir}" in \
        status["message"]


@pytest.mark.slow  # about 4-6 s: make test-all
def test_sigterm_stops_between_the_pieces_of_one_endless_draw(tmp_path):
    """One kept draw of 2**31 - 3 steps runs in calls of about half a second: SIGTERM stops it
    after the current one, with the last committed step (the end of warmup) in its message."""
    run_dir = tmp_path / "stopped"
    proc = start_run(run_dir, tmp_path, ["+experiment=sin_head", "sampler.warmup=2",
                                         "sampler.keep=1", f"sampler.thin={2**31 - 3}"])
    try:
        wait_for_checkpoint(run_dir, after_step=1)  # warmup committed: the draw is running
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 143
    finally:  # never left running (it would for hours)
        proc.kill()
        proc.wait()
    status = json.loads((run_dir / "status.json").read_text())
    assert "after committing step 2; continue with: headbayes resume" in status["message"]
    manifest = json.loads((run_dir / store.MANIFEST).read_text())
    assert manifest["checkpoint"]["next_step"] == 2 and manifest["parts"] == []
