"""Received run directories, fuzzed: a finished run's files are truncated, flipped, grown,
edited, swapped for one another, for a link, a folder or a FIFO, or removed, with the
checksum record rewritten to match or not (whoever sends a directory can rewrite it), and a
module planted beside them. Every command that reads a received directory then ends with exit
0, 2 or 4 and no traceback, opens no file outside it but its own inputs and outputs, imports
nothing from it, and stays within a memory bound.

`make test` runs a few fixed examples; `make test-all` (slow) runs many more."""

import contextlib
import io
import json
import os
import resource
import shutil
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import headbayes
from headbayes.app.cli import run_cli
from headbayes.app.session import owned, sample
from headbayes.core.errors import HeadbayesError
from headbayes.core.rundir import RunFiles
from run_edits import replace_with, rerecord

SMALL = ["sampler.warmup=20", "sampler.keep=10", "sampler.num_chains=2", "report.plots=false"]
FILES = ["run_config.json", ".hydra/config.yaml", "data.json", "hyperparameters.json",
         "mask.json", "params.npz", "params_initial.npz", "frozen_end.npz", "checksums.json",
         "chain/manifest.json", "chain/part-00000.npz", "chain/state-000000040.npz",
         "metrics.json", "meta.json", "status.json", "model_source.json"]
COMMANDS = ["report", "resume", "predict", "export", "summarize", "load_run"]
MEMORY_BOUND = 4 * 2**30  # bytes of peak resident memory for the whole test process
ODD_VALUES = [None, True, -1, 0, 2**63, 1e308, float("nan"), "", "x" * 1000, "../../outside",
              [], {}, [[[[]]]], {"_target_": "os.system"}, "${oc.env:HOME}"]

OPENED: list = []  # paths opened while a command runs (an audit hook: see `watching`)
_WATCHING = [False]


def _audit(event, args):
    """Records the file each open reaches: with O_NOFOLLOW a final link is not followed."""
    if _WATCHING[0] and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.abspath(os.fsdecode(args[0]))
        flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
        if flags & getattr(os, "O_NOFOLLOW", 0):
            OPENED.append(os.path.join(os.path.realpath(os.path.dirname(path)),
                                       os.path.basename(path)))
        else:
            OPENED.append(os.path.realpath(path))


sys.addaudithook(_audit)  # cannot be removed: it records only while `_WATCHING`


@contextlib.contextmanager
def watching():
    OPENED.clear()
    _WATCHING[0] = True
    try:
        yield
    finally:
        _WATCHING[0] = False


def finished_run(run: Path) -> Path:
    """A finished run of the seed's head at `run`, with a .hydra/config.yaml beside its config
    and a params_initial.npz (both recorded), so that every file a run can hold is there."""
    cfg = headbayes.compose(SMALL)
    with owned(run):
        sample(cfg, run, lambda *a: None)
    (run / ".hydra").mkdir()
    files = RunFiles(run)
    files.write_bytes(files.HYDRA_CONFIG, yaml.safe_dump(
        json.loads((run / "run_config.json").read_text())).encode())
    files.write_bytes(files.PARAMS_INITIAL, (run / "params.npz").read_bytes())
    assert run_cli(["report", str(run), "--no-plots"]) == 0
    return run


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    return finished_run(tmp_path_factory.mktemp("original") / "run")


@st.composite
def mutations(draw):
    name = draw(st.sampled_from(FILES))
    kind = draw(st.sampled_from(["truncate", "flip", "append", "grow", "edit", "swap",
                                 "symlink", "folder", "fifo", "remove", "plant"]))
    return {"name": name, "kind": kind, "other": draw(st.sampled_from(FILES)),
            "fraction": draw(st.floats(0, 1)), "byte": draw(st.integers(1, 255)),
            "tail": draw(st.binary(min_size=1, max_size=64)),
            "value": draw(st.sampled_from(ODD_VALUES)), "pick": draw(st.integers(0, 10**6)),
            "rerecord": draw(st.booleans()), "command": draw(st.sampled_from(COMMANDS))}


def mutate(run: Path, outside: Path, m: dict) -> None:
    """Apply mutation `m` to the copy `run` (files outside it live in `outside`)."""
    path = run / m["name"]
    exists = path.is_file()
    data = path.read_bytes() if exists else b""
    kind = m["kind"]
    if kind == "truncate" and exists:
        path.write_bytes(data[:int(len(data) * m["fraction"])])
    elif kind == "flip" and data:
        at = min(len(data) - 1, int(len(data) * m["fraction"]))
        path.write_bytes(data[:at] + bytes([data[at] ^ m["byte"]]) + data[at + 1:])
    elif kind == "append":
        path.write_bytes(data + m["tail"])
    elif kind == "grow" and exists:
        os.truncate(path, 2**40)  # sparse: a few bytes on disk, 1 TiB to whoever reads it
    elif kind == "edit" and exists:
        _edit(path, data, m)
    elif kind == "swap" and (run / m["other"]).is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes((run / m["other"]).read_bytes())
    elif kind in ("symlink", "folder", "fifo", "remove"):
        replace_with(path, "link" if kind == "symlink" else kind, outside / "secret.txt")
    elif kind == "plant":
        _plant(run, outside, m)
    if m["rerecord"] and m["name"] != "checksums.json" and kind != "grow":
        rerecord(run)


def _edit(path: Path, data: bytes, m: dict) -> None:
    """One value of a JSON or YAML file, or one array of an npz archive, replaced."""
    if path.suffix in (".json", ".yaml"):
        try:
            document = json.loads(data) if path.suffix == ".json" else yaml.safe_load(data)
        except ValueError:
            return
        slots = list(_slots(document))
        if not slots:
            return
        container, key = slots[m["pick"] % len(slots)]
        container[key] = m["value"]
        path.write_text(json.dumps(document) if path.suffix == ".json"
                        else yaml.safe_dump(document))
    elif path.suffix == ".npz":
        with np.load(path) as z:
            arrays = dict(z)
        if arrays:
            key = sorted(arrays)[m["pick"] % len(arrays)]
            a = arrays[key]
            arrays[key] = [a.astype(np.complex64), a[..., None], a.reshape(-1)[:0],
                           np.full_like(a, np.nan) if a.dtype.kind == "f" else a + 1, a.astype(np.int8),
                           np.repeat(a, 3, axis=0)][m["pick"] % 6]
            np.savez(path, **arrays)


def _slots(value):
    """(container, key) of every value inside a JSON document."""
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else [])
    for key, inner in items:
        yield value, key
        yield from _slots(inner)


def _plant(run: Path, outside: Path, m: dict) -> None:
    """A module inside the run (marking `outside` when imported) that the config names."""
    code = f"open({str(outside / 'IMPORTED')!r}, 'w').write('x')\ndef make(**k): pass\n"
    layout = m["pick"] % 3
    if layout == 0:
        (run / "evil.py").write_text(code)
    else:
        (run / "evil").mkdir(exist_ok=True)
        (run / "evil" / "__init__.py").write_text(code)
        if layout == 2:
            (run / "__init__.py").write_text("")
    config = json.loads((run / "run_config.json").read_text())
    config["model"] = {"_target_": ["evil.make", "run.evil.make"][m["pick"] % 2], "seed": 0}
    (run / "run_config.json").write_text(json.dumps(config))


def run_command(command: str, run: Path, work: Path) -> int:
    """Exit code of `command` on `run`, in this process, with `work` as working directory."""
    args = {"report": ["report", str(run), "--no-plots"], "resume": ["resume", str(run)],
            "predict": ["predict", str(run), "--input", str(work / "new.csv"), "--output",
                        str(work / "out.csv")],
            "export": ["export", str(run)], "summarize": ["summarize", str(run.parent)]}
    if command == "load_run":
        try:
            received = headbayes.load_run(run)
            received.predict([[0.5], [1.0]])
            received.metrics
        except HeadbayesError as e:
            return e.exit_code
        return 0
    return run_cli(args[command])


def check_received(original: Path, root: Path, m: dict) -> None:
    """Mutate a copy of `original` under `root` by `m`, run `m`'s command on it, and assert
    the promises of the module docstring."""
    outside, work = root / "outside", root / "work"
    for folder in (outside, work):
        folder.mkdir(parents=True, exist_ok=True)
    (outside / "secret.txt").write_text('{"secret": 1}')
    (work / "new.csv").write_text("x\n0.5\n1.0\n")
    run = root / "received" / "run"
    if run.parent.exists():
        shutil.rmtree(run.parent)
    shutil.copytree(original, run, symlinks=True)
    mutate(run, outside, m)
    before = {p: p.read_bytes() for p in outside.iterdir()}
    err, cwd = io.StringIO(), os.getcwd()
    os.chdir(run.parent)  # where the natural `headbayes report run` is typed
    previous = signal.signal(signal.SIGALRM, _too_long)
    signal.alarm(120)
    try:
        with watching(), contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = run_command(m["command"], run, work)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        os.chdir(cwd)
    message = err.getvalue()
    assert code in (0, 2, 4), (m, code, message)
    assert "Traceback" not in message, (m, message)
    assert {p: p.read_bytes() for p in outside.iterdir()} == before, m  # nothing written there
    opened_outside = [p for p in OPENED if Path(p).is_relative_to(outside)]
    assert not opened_outside, (m, opened_outside)
    planted = [name for name, module in list(sys.modules.items())
               if str(getattr(module, "__file__", "") or "").startswith(str(run))]
    assert not planted, (m, planted)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 < MEMORY_BOUND, m


def _too_long(signum, frame):
    raise AssertionError("a command on a received run directory ran for 120 s")


FUZZ = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@settings(FUZZ, max_examples=12)
@given(m=mutations())
def test_a_mutated_run_directory_is_refused_or_read_safely(original, tmp_path, m):
    check_received(original, tmp_path, m)


@pytest.mark.slow
@settings(FUZZ, max_examples=400)
@given(m=mutations())
def test_many_mutated_run_directories_are_refused_or_read_safely(original, tmp_path, m):
    check_received(original, tmp_path, m)
