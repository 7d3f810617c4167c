"""Signals during sampling: SIGTERM or SIGINT is recorded and honoured after the chunk being
computed is committed; a second one ends the process at once (every write is atomic)."""

import contextlib
import os
import signal
import sys
import threading

from headbayes.core.errors import SIGNALS_RECEIVED, SignalStop

__all__ = ["stop_requests"]


@contextlib.contextmanager
def stop_requests():
    """Record SIGTERM/SIGINT instead of dying mid-chunk; yields a list the signal is put in.
    A second signal exits at once (committed chunks are safe: every write is atomic)."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received  # handlers can only be installed from the main thread
        return
    def handler(signum, _frame):
        if received:  # a second signal: stop now; every committed chunk is already safe
            os._exit(128 + signum)
        received.append(signum)
        SIGNALS_RECEIVED.append(signum)
        print(f"headbayes: signal {signum}: stopping after this chunk (again to stop now)",
              file=sys.stderr)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:  # came after the last chunk's check: still honoured, never swallowed
        raise SignalStop(received[0])
