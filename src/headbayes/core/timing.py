"""Where a job's seconds go: named stages timed in order, and the process's own age.

`meta.json` keeps them under `timings.stages` (seconds per stage) and `timings.wall_s` (the
job's seconds to the end of its report, `job_seconds`); `headbayes run --profile` prints them.
A resumed run's `timings.earlier` lists the processes stopped before it (`earlier_processes`).
"""

import os
import time

__all__ = ["Stages", "process_seconds", "job_seconds", "end_job", "earlier_processes", "STARTED",
           "compile_seconds"]

STARTED = time.time()  # when headbayes was first imported: the fallback for process_seconds
_previous_job_end: float | None = None  # time.time() when this process's last job ended


def _process_age() -> float:
    """Seconds since this process started (Linux: /proc/self/stat, to 0.01 s; elsewhere since
    headbayes was first imported, which misses the interpreter's own start-up)."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.time() - STARTED


_PROCESS_START = time.time() - _process_age()  # read once: later ages share its 0.01 s error


def process_seconds() -> float:
    """Seconds since this process started (see `_process_age`); two readings differ by the
    clock's time between them, to the microsecond."""
    return time.time() - _PROCESS_START


def job_seconds() -> float:
    """Seconds of the current job so far: from the process's start for its first job; for a
    later job of a sweep run in the same process, from the end of the job before it (so its
    start-up is Hydra's launching of it, not the jobs before)."""
    if _previous_job_end is None:
        return process_seconds()
    return time.time() - _previous_job_end


def end_job() -> None:
    """Mark the current job's end: the next job in this process counts from here."""
    global _previous_job_end
    _previous_job_end = time.time()


COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                  "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration")
_compiling = {"seconds": 0.0, "listening": False}


def compile_seconds() -> float:
    """Seconds JAX has spent tracing, lowering and compiling programs in this process since
    the first call (its `jax.monitoring` compile events; a program loaded from the persistent
    cache counts its tracing and lowering only). A job's compile time is the difference of
    two readings."""
    if not _compiling["listening"]:
        import jax.monitoring

        def count(event: str, seconds: float, **_kwargs) -> None:
            if event in COMPILE_EVENTS:
                _compiling["seconds"] += seconds

        jax.monitoring.register_event_duration_secs_listener(count)
        _compiling["listening"] = True
    return _compiling["seconds"]


class Stages:
    """Seconds per named stage, in the order first seen; a stage timed twice adds up."""

    def __init__(self, seconds: dict | None = None):
        self.seconds: dict[str, float] = dict(seconds or {})
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        """Add the time since the previous lap (or since this object was made) to `name`."""
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._last
        self._last = now


MAX_EARLIER = 10_000  # processes carried in timings.earlier; more are dropped (oldest first)


def earlier_processes(status: dict) -> list[dict]:
    """The timings of the processes that worked on a run before this one resumed it, oldest
    first: from status.json's `timings` of a run stopped between chunks ({"stages", "wall_s",
    "earlier"}), each as {"stages": {name: seconds}, "wall_s": seconds}. status.json may come
    from someone else: anything but names and finite non-negative seconds gives []."""
    timings = status.get("timings") if isinstance(status, dict) else None
    if not isinstance(timings, dict):
        return []
    entries = timings.get("earlier", [])
    if not isinstance(entries, list):
        return []
    entries = [*entries[-(MAX_EARLIER - 1):], {k: timings.get(k) for k in ("stages", "wall_s")}]
    return entries if all(map(_is_process_timing, entries)) else []


def _is_process_timing(entry) -> bool:
    def seconds(x) -> bool:
        return type(x) in (int, float) and 0 <= x <= 1e9

    return (isinstance(entry, dict) and set(entry) == {"stages", "wall_s"}
            and seconds(entry["wall_s"]) and isinstance(entry["stages"], dict)
            and len(entry["stages"]) <= 64
            and all(isinstance(k, str) and len(k) <= 64 and seconds(v)
                    for k, v in entry["stages"].items()))
