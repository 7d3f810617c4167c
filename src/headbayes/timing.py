"""Where a job's seconds go: named stages timed in order, and the process's own age.

`meta.json` keeps them under `timings.stages` (seconds per stage) and `timings.wall_s` (from
the process's start to the end of the report); `headbayes run --profile` prints them.
"""

import os
import time

__all__ = ["Stages", "process_seconds", "STARTED"]

STARTED = time.time()  # when headbayes was first imported: the fallback for process_seconds


def process_seconds() -> float:
    """Seconds since this process started (Linux: /proc/self/stat; elsewhere since headbayes
    was first imported, which misses the interpreter's own start-up)."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.time() - STARTED


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
