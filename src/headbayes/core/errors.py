"""Error types that map to the command's exit codes (the README's exit code table)."""

__all__ = ["HeadbayesError", "ConfigError", "OtherRunInDir", "RunInUse", "SamplingError",
           "RunDirError", "Interrupted", "SignalStop", "SIGNALS_RECEIVED", "raise_if_signalled"]


class HeadbayesError(Exception):
    """A failure the user can act on; printed as one message, never as a traceback."""

    exit_code = 1


class ConfigError(HeadbayesError, ValueError):
    """Bad config or usage: exit code 2."""

    exit_code = 2


class OtherRunInDir(ConfigError):
    """A job's run directory already holds committed chunks of another config: exit code 2,
    and nothing in that directory is changed."""


class RunInUse(OtherRunInDir):
    """Another live process holds the run directory's lock: exit code 2, nothing changed."""


class SamplingError(HeadbayesError):
    """Sampling produced non-finite values: exit code 3."""

    exit_code = 3


class RunDirError(HeadbayesError):
    """A run directory is missing files or is corrupt: exit code 4."""

    exit_code = 4


class Interrupted(HeadbayesError):
    """SIGTERM or SIGINT: the current chunk was committed; exit code 128 + signal number
    (143 for SIGTERM, 130 for SIGINT), and `headbayes resume` continues the run. `timings`:
    the stopped process's (status.json keeps them; the resumed run's meta.json lists them)."""

    def __init__(self, signum: int, message: str, timings: dict | None = None):
        super().__init__(message)
        self.exit_code = 128 + signum
        self.timings = timings


SIGNALS_RECEIVED: list[int] = []  # every SIGTERM/SIGINT the CLI's handler saw, in order


def raise_if_signalled() -> None:
    """Raise SignalStop for a signal whose exception was swallowed on the way (a handler that
    ran inside a finalizer, whose exceptions Python ignores): a signal is never lost."""
    if SIGNALS_RECEIVED:
        raise SignalStop(SIGNALS_RECEIVED[0])


class SignalStop(BaseException):
    """SIGTERM or SIGINT outside the chunk loop (start-up, compilation, report): raised by the
    handler `headbayes.app.cli` installs, a BaseException so no `except Exception` swallows it;
    the command exits 128 + signal number. Whatever was committed stays resumable."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by signal {signum}")
        self.signum = signum
        self.exit_code = 128 + signum

    def in_run(self, run_dir) -> "Interrupted":
        """The same stop as the run `run_dir` records it: with the command that continues it."""
        return Interrupted(self.signum, f"{self}; continue with: headbayes resume {run_dir}")
