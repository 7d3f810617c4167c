"""The report's plots drawn by a second Python process, which imports matplotlib while the job runs.

Importing matplotlib takes about 0.3 s on a CPU, a seventh of a warm `sin_head` run, and a
thread cannot hide it: the job's own Python work holds the interpreter lock. A process can, if
it starts early. `headbayes run` (a single job, not `-m`) and `resume` call `launch` first
thing, before they import JAX or Hydra. It starts
`python -c "from headbayes.report.plotworker import serve; serve()"`, which imports matplotlib and
`headbayes.report.plots` and waits for one request on its stdin. The first job that plots `take`s
it (the jobs of a sweep plot in-process, where the figures are kept from job to job); a job without
plots, or a command that ends before a job, stops it. The request is a JSON line naming a `.npz`
file and the plot calls: the arguments travel as the arrays in that file (read without pickle) and
a JSON outline of the dicts, named tuples (rebuilt as namespaces), lists and plain values around
them.

A call that cannot be sent (another type, or more than MAX_BYTES of arrays) and a worker that
fails or is gone leave the plots to this process (`draw` returns False): the worker only ever
saves time, and an error, such as an unwritable run directory, surfaces from the in-process plots
as it would without it. `HEADBAYES_PLOT_WORKER=0` turns it off.
"""

import atexit
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from headbayes.core.settings import settings
from headbayes.report import plots

__all__ = ["PlotWorker", "launch", "start", "take", "serve"]

MAX_BYTES = 64 * 2**20  # arrays sent to the worker per job; more are plotted in-process
ENTRY = "from headbayes.report.plotworker import serve; serve()"
DONE = b"done\n"  # the worker's one line on stdout, once every plot is saved


class PlotWorker:
    """The worker process of one job; `draw` at most once, `close` always."""
    def __init__(self, process: subprocess.Popen):
        self.process = process

    def draw(self, calls: list[tuple[str, tuple]]) -> bool:
        """Run `calls` (plot function name in `headbayes.report.plots`, arguments) in the worker
        and wait for it; False when it could not (nothing is then promised about the files)."""
        arrays: dict = {}
        try:
            outline = [[name, _pack(list(args), arrays)] for name, args in calls]
        except TypeError:
            return False
        if sum(a.nbytes for a in arrays.values()) > MAX_BYTES:
            return False
        with tempfile.TemporaryDirectory(prefix="headbayes-plots-") as tmp:
            path = Path(tmp) / "arguments.npz"
            np.savez(path, **arrays)
            request = json.dumps({"arrays": str(path), "calls": outline}) + "\n"
            try:
                self.process.stdin.write(request.encode())
                self.process.stdin.close()
                return self.process.stdout.readline() == DONE  # it leaves without waiting
            except (OSError, ValueError):  # the worker is gone, or its pipes closed
                return False

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()


_WAITING: list = []  # the worker `launch` started, until a job takes it


def launch() -> None:
    """Start a worker for this process's first job that plots (see the module docstring)."""
    if (_WAITING or "matplotlib" in sys.modules
            or not settings().plot_worker):
        return
    try:
        _WAITING.append(start())
    except OSError:
        return
    atexit.register(_stop_waiting)


def start() -> PlotWorker:
    """A new worker process (`serve`), waiting for its request."""
    # -P: the working directory (perhaps a received run's folder) is not on its import path
    return PlotWorker(subprocess.Popen([sys.executable, "-P", "-c", ENTRY], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL))


def take(plots: bool) -> PlotWorker | None:
    """The launched worker for a job that plots (the caller `close`s it); None where the plots
    are drawn in this process. A job without plots stops the worker."""
    worker = _WAITING.pop() if _WAITING else None
    if worker is not None and not plots:
        worker.close()
        return None
    return worker


def _stop_waiting() -> None:
    while _WAITING:
        _WAITING.pop().close()


def serve() -> None:
    """The worker: import the plotting libraries, then run the one request on stdin."""
    plots._pyplot()  # the Agg backend, and pyplot for the plots that use it
    line = sys.stdin.readline()
    if not line:  # the job ended without plots
        return
    request = json.loads(line)
    with np.load(request["arrays"], allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    for name, outline in request["calls"]:
        getattr(plots, name)(*_unpack(outline, arrays))
    sys.stdout.buffer.write(DONE)  # every file is written and closed
    sys.stdout.flush()
    os._exit(0)  # the interpreter's teardown (matplotlib's too) would only keep the job waiting


def _pack(value, arrays: dict):
    """The JSON outline of `value`; its arrays go to `arrays` under the keys it names."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"v": value}
    if isinstance(value, Path):
        return {"p": str(value)}
    if hasattr(value, "__array__"):  # numpy's (and JAX's) arrays and scalars
        array = np.asarray(value)
        if array.dtype == object:
            raise TypeError("object array")
        key = f"a{len(arrays)}"
        arrays[key] = array
        return {"a": key}
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a NamedTuple
        return {"n": {field: _pack(getattr(value, field), arrays) for field in value._fields}}
    if isinstance(value, SimpleNamespace):
        return {"n": {k: _pack(v, arrays) for k, v in vars(value).items()}}
    if isinstance(value, (list, tuple)):
        return {"l": [_pack(v, arrays) for v in value]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"d": {k: _pack(v, arrays) for k, v in value.items()}}
    raise TypeError(f"cannot send a {type(value).__name__} to the plot worker")


def _unpack(outline: dict, arrays: dict):
    (kind, content), = outline.items()
    if kind == "v":
        return content
    if kind == "p":
        return Path(content)
    if kind == "a":
        return arrays[content]
    if kind == "n":
        return SimpleNamespace(**{k: _unpack(v, arrays) for k, v in content.items()})
    if kind == "l":
        return [_unpack(v, arrays) for v in content]
    return {k: _unpack(v, arrays) for k, v in content.items()}
