"""Files of a run directory at the lowest level: atomic writes, chunked chain files, loading
back (`headbayes.rundir.RunFiles` owns the names of the others).

Every file is written to a temporary name and renamed into place. Arrays go to `.npz` keyed by
dotted leaf path; nothing is pickled, and everything is loaded with `allow_pickle=False`.
The chain lives in `chain/part-NNNNN.npz` (sampled leaves only, axes (chain, draw, *shape));
Beside the leaves, a part holds the step information summed per kept draw under `info/NAME`
(axes (chain, draw)). `chain/manifest.json` lists committed parts with their draw counts and
SHA-256, and is rewritten after each part, so a part counts only once the manifest names it.
"""

import contextlib
import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from headbayes.errors import ConfigError, RunDirError

__all__ = ["write_bytes", "write_json", "write_npz", "read_json", "read_npz", "run_lock",
           "ChainWriter", "load_chain", "load_chain_and_info", "verify_chain", "MANIFEST",
           "INFO_PREFIX"]

MANIFEST = "chain/manifest.json"
INFO_PREFIX = "info/"


def write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (temp file, fsync, rename). A failed write (disk full,
    permissions) raises RunDirError naming the path and the OS error; `path` is untouched."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise RunDirError(f"cannot write {path}: {e.strerror or e} (errno {e.errno}); "
                          f"everything committed before is intact") from None


def write_json(path: Path, obj) -> None:
    write_bytes(path, (json.dumps(obj, indent=2, allow_nan=True) + "\n").encode())


def _npz_bytes(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    return buffer.getvalue()


def write_npz(path: Path, arrays: dict) -> None:
    write_bytes(path, _npz_bytes(arrays))


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise RunDirError(f"missing file {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunDirError(f"corrupt file {path}: {e}") from None


def read_npz(path: Path, data: bytes | None = None) -> dict:
    """All arrays of an npz file (or of its already-read bytes `data`); RunDirError if missing,
    corrupt or holding objects."""
    try:
        with np.load(path if data is None else io.BytesIO(data), allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise RunDirError(f"missing file {path}") from None
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise RunDirError(f"corrupt file {path}: {e}") from None


def _read_verified(path: Path, sha256: str, what: str) -> bytes:
    """The bytes of `path` if their SHA-256 is `sha256`; RunDirError naming the file if not."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RunDirError(f"missing {what} file {path}") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise RunDirError(f"corrupt {what} file {path}: checksum mismatch")
    return data


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """Hold RUN_DIR/.lock (our pid) while writing; a second live writer is refused (exit 2).

    A lock left by a process that no longer exists is taken over.
    """
    path = Path(run_dir) / ".lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                owner = int(path.read_text().strip() or 0)
                os.kill(owner, 0)
            except (ValueError, ProcessLookupError, FileNotFoundError):
                path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            except PermissionError:
                pass  # alive, owned by someone else
            raise ConfigError(f"{run_dir} is being written by process {owner} "
                              f"(lock {path}); wait for it or stop it first") from None
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        break
    else:
        raise ConfigError(f"cannot take the lock {path}")
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


class ChainWriter:
    """Appends chunks of draws to `RUN_DIR/chain/` and commits each in the manifest.

    With every commit goes a checkpoint: the loop state after the chunk
    (`chain/state-STEP.npz`, arrays keyed by their index among the state's leaves), the next
    step and the running counts. The manifest, rewritten last, is the commit point; files it
    does not name are leftovers of an interrupted write and are replaced or removed.
    """

    def __init__(self, run_dir: Path, resume: bool = False):
        self.run_dir = Path(run_dir)
        if resume:
            manifest = read_json(self.run_dir / MANIFEST)
            self.parts, self.checkpoint = manifest["parts"], manifest.get("checkpoint")
        else:
            self.parts, self.checkpoint = [], None
            self._write_manifest()

    def _write_manifest(self) -> None:
        write_json(self.run_dir / MANIFEST, {"parts": self.parts, "checkpoint": self.checkpoint})

    def commit(self, next_step: int, state_leaves: list, counts: dict, draws: dict | None = None,
               info: dict | None = None) -> None:
        """Commit optional draws ({leaf path: (chain, draw, *shape)}, info {name: (chain,
        draw)}) with the loop state reached at `next_step`."""
        if draws is not None and next(iter(draws.values())).shape[1] > 0:
            name = f"chain/part-{len(self.parts):05d}.npz"
            data = _npz_bytes({**draws, **{INFO_PREFIX + k: v for k, v in (info or {}).items()}})
            write_bytes(self.run_dir / name, data)
            self.parts.append({"file": name, "draws": int(next(iter(draws.values())).shape[1]),
                               "sha256": hashlib.sha256(data).hexdigest()})
        state_name = f"chain/state-{next_step:09d}.npz"
        data = _npz_bytes({str(i): np.asarray(leaf) for i, leaf in enumerate(state_leaves)})
        write_bytes(self.run_dir / state_name, data)
        previous = self.checkpoint
        self.checkpoint = {"next_step": int(next_step), "state": state_name,
                           "sha256": hashlib.sha256(data).hexdigest(), "counts": dict(counts)}
        self._write_manifest()
        if previous and previous["state"] != state_name:
            (self.run_dir / previous["state"]).unlink(missing_ok=True)

    def load_state(self) -> list:
        """The committed state's leaves, checksum verified (RunDirError if missing/corrupt)."""
        if not self.checkpoint:
            raise RunDirError(f"{self.run_dir / MANIFEST} names no checkpoint to resume from")
        path = self.run_dir / self.checkpoint["state"]
        arrays = read_npz(path, _read_verified(path, self.checkpoint["sha256"], "checkpoint"))
        return [arrays[str(i)] for i in range(len(arrays))]


def verify_chain(run_dir: Path) -> None:
    """Check the SHA-256 of every committed part and the checkpoint (RunDirError naming the
    file), without parsing them."""
    manifest = read_json(Path(run_dir) / MANIFEST)
    entries = [(p["file"], p["sha256"]) for p in manifest.get("parts", [])]
    if manifest.get("checkpoint"):
        entries.append((manifest["checkpoint"]["state"], manifest["checkpoint"]["sha256"]))
    for name, digest in entries:
        _read_verified(Path(run_dir) / name, digest, "chain")


def load_chain(run_dir: Path) -> dict:
    """{leaf path: array (chain, draw, *shape)} from the committed parts, checksums verified."""
    return load_chain_and_info(run_dir)[0]


def load_chain_and_info(run_dir: Path) -> tuple[dict, dict]:
    """(leaves, step information), each {name: array with axes (chain, draw, ...)}."""
    run_dir = Path(run_dir)
    parts = read_json(run_dir / MANIFEST).get("parts", [])
    if not parts:
        raise RunDirError(f"no committed draws in {run_dir / 'chain'}")
    pieces = []
    for part in parts:
        path = run_dir / part["file"]
        pieces.append(read_npz(path, _read_verified(path, part["sha256"], "chain")))
    try:
        arrays = {k: np.concatenate([p[k] for p in pieces], axis=1) for k in pieces[0]}
    except (KeyError, ValueError) as e:
        raise RunDirError(f"inconsistent chain files in {run_dir / 'chain'}: {e}") from None
    chain = {k: v for k, v in arrays.items() if not k.startswith(INFO_PREFIX)}
    info = {k[len(INFO_PREFIX):]: v for k, v in arrays.items() if k.startswith(INFO_PREFIX)}
    return chain, info
