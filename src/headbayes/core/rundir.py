"""The run directory: the one place that knows its file names and reads and writes them.

```
.hydra/              config.yaml, overrides.yaml, hydra.yaml (CLI runs; written under the lock)
run_config.json      the config the run samples with
data.json            input and target names, standardisation constants (for predict), and
                     the run's copies of the user's data files with their SHA-256
inputs/              path.csv, test_path.csv (or .npz): those copies (headbayes.datasets.datacopy)
hyperparameters.json likelihood_sigma, prior_sigma the run samples with (set or learned)
mask.json            every leaf: path, shape, size, sampled; totals
params.npz           the full parameters the run samples with (trained body included)
params_initial.npz   the initial parameters, when a body is trained (pretrained, joint)
frozen_end.npz       the frozen leaves as the sampling loop held them at its end (the report
                     compares them with params.npz bit for bit: unmasked_var_max)
chain/               manifest.json, part-NNNNN.npz, state-STEP.npz (see headbayes.core.store)
meta.json            versions, counts, timings, device
metrics.json         the report's figures;  predictive.png, calibration.png, trace.png
status.json          {"status": "ok" | "failed", "exit_code", "message"}
```
Every write is atomic (temporary file, fsync, rename; headbayes.core.store); arrays are loaded with
`allow_pickle=False`; a missing or corrupt file is a RunDirError (exit 4) naming it.
"""

import contextlib
import dataclasses
import hashlib
import os
from pathlib import Path

from headbayes.core import store
from headbayes.core.errors import ConfigError, RunDirError, RunInUse

__all__ = ["RunFiles"]


class RunFiles:
    """Reads and writes the files of the run directory `root`."""
    CONFIG = "run_config.json"
    DATA = "data.json"
    HYPERPARAMETERS = "hyperparameters.json"
    MASK = "mask.json"
    MODEL_SOURCE = "model_source.json"  # a `model._target_` run: its module's source digest
    PARAMS = "params.npz"
    PARAMS_INITIAL = "params_initial.npz"
    FROZEN_END = "frozen_end.npz"
    META = "meta.json"
    METRICS = "metrics.json"
    SPLIT = "split.npz"  # data read from a file: the file's rows of each part
    STATUS = "status.json"
    HYDRA_CONFIG = ".hydra/config.yaml"
    HYDRA_OVERRIDES = ".hydra/overrides.yaml"
    HYDRA_SETTINGS = ".hydra/hydra.yaml"
    PREDICTIVE_PLOT = "predictive.png"
    CALIBRATION_PLOT = "calibration.png"
    TRACE_PLOT = "trace.png"
    PHYSICS_PLOT = "physics.png"
    NETCDF = "inference_data.nc"
    CHECKSUMS = "checksums.json"  # {name: SHA-256} of every RECORDED file, as the run wrote it
    # what a report, prediction or resume reads besides the chain (whose parts the manifest
    # checks) and the data copies (data.json checks them), and the figures summarize and the
    # API read: a changed one is refused
    RECORDED = (CONFIG, HYDRA_CONFIG, DATA, HYPERPARAMETERS, MASK, MODEL_SOURCE, PARAMS,
                PARAMS_INITIAL, FROZEN_END, METRICS, SPLIT)

    def __init__(self, root):
        self.root = Path(root)

    @classmethod
    def finished_alone(cls, root) -> "RunFiles":
        """`existing`, and RunInUse (exit 2) while another live process writes it: its chain
        and files are still changing."""
        files = cls.existing(root)
        writer = store.live_writer(files.root)
        if writer is not None:
            raise RunInUse(f"{root} is being written by process {writer}; wait for it to "
                           f"finish (its chain is still growing)")
        return files

    @classmethod
    def existing(cls, root) -> "RunFiles":
        """The files of `root`; ConfigError (exit 2) when no such directory exists."""
        if Path(root).exists() and not Path(root).is_dir():
            raise ConfigError(f"{root} is a file, not a run directory")
        if not Path(root).is_dir():
            raise ConfigError(f"run directory {root} does not exist")
        return cls(root)

    def path(self, name: str) -> Path:
        """ROOT/NAME for one of the names above (or a chain file the manifest names), checked
        by `store.confined`: a plain name, no symbolic link on the way."""
        return store.confined(self.root, name)

    def has(self, name: str) -> bool:
        """True when `name` is there, a regular file; False when nothing is. RunDirError (exit
        4) when something else is there (a link, a folder, a FIFO), and for a RECORDED file
        that checksums.json names as written but that is missing."""
        path = self.path(name)
        if not os.path.lexists(path):
            if name in self.RECORDED and isinstance((self._checksums() or {}).get(name), str):
                raise RunDirError(f"missing file {path}, which {self.CHECKSUMS} names: a run's "
                                  f"file was removed")
            return False
        if path.is_symlink():
            raise RunDirError(f"refused {path}: a symbolic link inside a run directory")
        if not path.is_file():
            raise RunDirError(f"refused {path}: not a regular file")
        return True

    def read_json(self, name: str) -> dict:
        return store.read_json(self.path(name), self._verified(name))

    def read_yaml(self, name: str):
        return store.read_yaml(self.path(name), self._verified(name))

    def read_bytes(self, name: str) -> bytes:
        return self._verified(name) or store.read_bytes(self.path(name))

    def write_json(self, name: str, obj) -> None:
        self.write_bytes(name, store.json_bytes(obj))

    def write_npz(self, name: str, arrays: dict) -> None:
        self.write_bytes(name, store.npz_bytes(arrays))

    def write_bytes(self, name: str, data: bytes) -> None:
        """Write `name` atomically; a RECORDED file is recorded in checksums.json first as
        being written (the record accepts its old and its new SHA-256), then as written: a
        process stopped between the steps leaves a record that accepts whichever file is in
        place."""
        record = self._recording(name)
        if record is None:
            store.write_bytes(self.path(name), data)
            return
        new, old = hashlib.sha256(data).hexdigest(), record.get(name)
        record[name] = [*(old if isinstance(old, list) else [old] if old else []), new]
        store.write_json(self.path(self.CHECKSUMS), record)
        store.write_bytes(self.path(name), data)
        record[name] = new
        store.write_json(self.path(self.CHECKSUMS), record)

    # --- the record of what changes a figure ------------------------------------------------
    def _recording(self, name: str) -> dict | None:
        """The record to put the RECORDED file `name` in; None for another file, and for a run
        written before checksums.json existed (recorded files but no record), which stays
        without one: a partial record would refuse its other files."""
        if name not in self.RECORDED:
            return None
        record = self._checksums()
        if record is None and any(self.has(other) for other in self.RECORDED if other != name):
            return None
        return record or {}

    def _checksums(self) -> dict | None:
        """checksums.json's {name: SHA-256, or the SHA-256s accepted while it is rewritten};
        None for a run written before it existed."""
        if not self.has(self.CHECKSUMS):
            return None
        record = store.read_json(self.path(self.CHECKSUMS))
        digest = lambda v: isinstance(v, str) and store.SHA256.fullmatch(v)  # noqa: E731
        if not all(digest(v) or (isinstance(v, list) and v and all(map(digest, v)))
                   for v in record.values()):
            raise RunDirError(f"corrupt file {self.path(self.CHECKSUMS)}: expected "
                              f"{{name: SHA-256}}")
        return record

    def _verified(self, name: str) -> bytes | None:
        """The bytes of a RECORDED file, refused (RunDirError) unless they are the ones the run
        wrote, or unless the record names no such file; None for another file. In a run written
        before checksums.json existed, every file is read as it is."""
        if name not in self.RECORDED:
            return None
        data = store.read_bytes(self.path(name))
        record = self._checksums()
        if record is None:
            return data
        accepted = record.get(name)
        if accepted is None:
            raise RunDirError(f"{self.path(name)} is not named in {self.CHECKSUMS}: not a file "
                              f"the run wrote, so figures from it would not be the run's")
        if hashlib.sha256(data).hexdigest() not in (
                accepted if isinstance(accepted, list) else [accepted]):
            raise RunDirError(f"{self.path(name)} is not the file the run wrote (its SHA-256 "
                              f"differs from {self.CHECKSUMS}'s); figures from it would not be "
                              f"the run's")
        return data

    # --- the config -------------------------------------------------------------------------
    def write_config(self, cfg) -> None:
        self.write_json(self.CONFIG, dataclasses.asdict(cfg))

    def hydra_overrides(self) -> dict:
        """{key: value} of the job's Hydra overrides (.hydra/overrides.yaml)."""
        path = self.path(self.HYDRA_OVERRIDES)
        items = store.read_yaml(path) or []
        if not isinstance(items, list):
            raise RunDirError(f"corrupt file {path}: expected a list of overrides")
        return dict(item.split("=", 1) for item in items if isinstance(item, str) and "=" in item)

    def is_job(self) -> bool:
        """A job directory of a Hydra sweep (it holds .hydra/)."""
        path = self.root / ".hydra"
        return path.is_dir() and not path.is_symlink()

    # --- parameters -------------------------------------------------------------------------
    def write_params(self, named: dict, initial: bool = False) -> None:
        self.write_npz(self.PARAMS_INITIAL if initial else self.PARAMS, named)

    def read_npz(self, name: str) -> dict:
        return store.read_npz(self.path(name), self._verified(name))

    def read_params(self, initial: bool = False) -> dict:
        return self.read_npz(self.PARAMS_INITIAL if initial else self.PARAMS)

    # --- status -----------------------------------------------------------------------------
    def write_status(self, error=None) -> None:
        """{"status": "ok", "exit_code": 0}, or the failure's exit code and message (`error`:
        an exception; HeadbayesError subclasses carry their exit code, others count as 1),
        and the timings of a process stopped between chunks (`errors.Interrupted`)."""
        if error is None:
            status = {"status": "ok", "exit_code": 0}
        else:
            known = hasattr(error, "exit_code")
            status = {"status": "failed", "exit_code": error.exit_code if known else 1,
                      "message": str(error) if known else f"{type(error).__name__}: {error}"}
            if getattr(error, "timings", None):
                status["timings"] = error.timings
        self.write_json(self.STATUS, status)

    def status(self) -> dict:
        """status.json's content; {} when there is none (a run still going, or killed)."""
        return self.read_json(self.STATUS) if self.has(self.STATUS) else {}

    # --- the chain --------------------------------------------------------------------------
    def holds_chunks(self) -> bool:
        """True when committed chunks (a checkpoint) are on disk."""
        return self.has(store.MANIFEST) and bool(store.read_manifest(self.root)["checkpoint"])

    def chain_writer(self, resume: bool = False) -> store.ChainWriter:
        return store.ChainWriter(self.root, resume=resume)

    def chain(self, sampler=None, leaves: dict | None = None) -> tuple[dict, dict]:
        """(leaves, step information), checksums verified; with the run's sampler options, the
        checkpoint checked against the draws kept (`store.check_progress`); with `leaves`
        ({name: shape of one draw}), exactly those arrays besides the step information."""
        return store.load_chain_and_info(self.root, sampler, leaves)

    def verify_chain(self) -> None:
        if self.has(store.MANIFEST):
            store.verify_chain(self.root)

    @contextlib.contextmanager
    def lock(self):
        with store.run_lock(self.root):
            yield
