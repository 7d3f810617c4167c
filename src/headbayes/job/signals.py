"""Signals during sampling: SIGTERM or SIGINT is recorded and honoured after the chunk being
computed is committed; a second one ends the process at once (every write is atomic).

Python runs a signal handler only between bytecodes of the main thread, so not while the main
thread waits inside a compiled call. `second_signal_ends_process` therefore also has a thread
watch the signals (through `signal.set_wakeup_fd`): it sees them at once, and ends the process
at the second. Before it ends the process, the callbacks of `on_stop_now` run (a run records
its status.json there)."""

import contextlib
import os
import signal
import sys
import threading

from headbayes.core.errors import SIGNALS_RECEIVED, SignalStop

__all__ = ["stop_requests", "second_signal_ends_process", "on_stop_now"]

STOPPING = (signal.SIGTERM, signal.SIGINT)
LAST_WORDS: list = []  # callables(signum) run before a second signal ends the process


@contextlib.contextmanager
def on_stop_now(callback):
    """Within: `callback(signum)` runs, from whichever thread sees it, just before a second
    signal ends the process. It must be quick and must not take a lock the main thread may
    hold; an error in it is ignored."""
    LAST_WORDS.append(callback)
    try:
        yield
    finally:
        LAST_WORDS.remove(callback)


def _stop_now(signum: int) -> None:
    """End the process with 128 + `signum` after the `on_stop_now` callbacks."""
    for callback in list(LAST_WORDS):
        try:
            callback(signum)
        except BaseException:  # noqa: BLE001 - the process ends whatever happens here
            pass
    os._exit(128 + signum)


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
            _stop_now(signum)
        received.append(signum)
        SIGNALS_RECEIVED.append(signum)
        print(f"headbayes: signal {signum}: stopping after this chunk (again to stop now)",
              file=sys.stderr)

    previous = {sig: signal.signal(sig, handler) for sig in STOPPING}
    try:
        with second_signal_ends_process():
            yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:  # came after the last chunk's check: still honoured, never swallowed
        raise SignalStop(received[0])


@contextlib.contextmanager
def second_signal_ends_process():
    """Within: the second SIGTERM/SIGINT ends the process (exit 128 + signal) as it arrives,
    even inside a compiled call. Call it from the main thread with Python handlers installed
    for both signals (only those signals reach the watching thread); elsewhere it does
    nothing. The previous wakeup file descriptor comes back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    watcher = threading.Thread(target=_watch, args=(read_fd,), name="headbayes-signals",
                               daemon=True)
    watcher.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous)
        os.close(write_fd)  # the watcher reads the end of the pipe and returns
        watcher.join(timeout=1)
        os.close(read_fd)


def _watch(read_fd: int) -> None:
    seen = 0
    while True:
        try:
            received = os.read(read_fd, 64)
        except OSError:
            return
        if not received:
            return
        for signum in received:
            if signum in STOPPING:
                seen += 1
                if seen >= 2:
                    print(f"headbayes: signal {signum} again: stopping now", file=sys.stderr,
                          flush=True)
                    _stop_now(signum)
