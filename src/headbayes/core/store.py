"""Files of a run directory at the lowest level: atomic writes, chunked chain files, loading
back (`headbayes.core.rundir.RunFiles` owns the names of the others).

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
import math
import os
import re
import stat
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from headbayes.core.errors import ConfigError, RunDirError, RunInUse
from headbayes.core.memory import available_memory

__all__ = ["confined", "read_bytes", "open_npz", "temporary_beside", "write_bytes", "json_bytes",
           "npz_bytes", "write_json", "write_npz", "read_json", "read_yaml", "read_npz",
           "read_manifest", "run_lock", "live_writer", "ChainWriter", "load_chain",
           "load_chain_and_info", "verify_chain", "check_progress", "sha256_of",
           "check_replaceable", "MANIFEST", "INFO_PREFIX"]

MANIFEST = "chain/manifest.json"
INFO_PREFIX = "info/"


NAME = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]*")  # one component of a run-directory name
PART_NAME = re.compile(r"chain/part-\d{5}\.npz")
STATE_NAME = re.compile(r"chain/state-\d{9}\.npz")
SHA256 = re.compile(r"[0-9a-f]{64}")
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def confined(root: Path, name: str) -> Path:
    """ROOT/NAME after checking that NAME is a relative name of plain components (letters,
    digits, `_.-`, no `..`) and that no existing directory on the way is a symbolic link; a
    RunDirError (exit 4) otherwise. The final component is opened without following links
    (`read_bytes`, `write_bytes`)."""
    parts = name.split("/")
    if not all(NAME.fullmatch(p) and p not in (".", "..") for p in parts):
        raise RunDirError(f"refused file name {name!r} in {root}: not a plain name inside it")
    directory = Path(root)
    for part in parts[:-1]:
        directory = directory / part
        if directory.is_symlink():
            raise RunDirError(f"refused {directory}: a symbolic link inside a run directory")
    return Path(root) / name


JSON_LIMIT = 16 * 2**20  # bytes: far above any JSON file headbayes writes


def read_bytes(path: Path, limit: int | None = None) -> bytes:
    """The bytes of `path`, refusing a symbolic link, anything but a regular file and a file
    larger than `limit` bytes (default: a quarter of the memory free), unread (RunDirError,
    exit 4)."""
    with _regular(path) as (f, size):
        if limit is None:
            available = available_memory()
            limit = available // 4 if available is not None else None
        _refuse_larger(path, size, limit)
        return f.read()


def sha256_of(path: Path) -> str:
    """The SHA-256 of a regular file (as `read_bytes` refuses others), read in blocks of 1 MiB:
    its size never matters."""
    digest = hashlib.sha256()
    with _regular(path) as (f, _):
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _regular(path: Path):
    """(open binary file, size) of `path`; RunDirError for a link, a missing file or anything
    but a regular file (a FIFO is refused without waiting for a writer)."""
    try:
        # O_NONBLOCK: a FIFO opens at once (and is refused below) instead of waiting for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise RunDirError(f"missing file {path}") from None
    except OSError as e:
        if Path(path).is_symlink():
            raise RunDirError(f"refused {path}: a symbolic link inside a run directory") from None
        raise RunDirError(f"cannot read {path}: {e.strerror or e}") from None
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):  # before fdopen, which refuses a folder itself
        os.close(fd)
        raise RunDirError(f"refused {path}: not a regular file")
    with os.fdopen(fd, "rb") as f:
        yield f, status.st_size


def _refuse_larger(path: Path, size: int, limit: int | None) -> None:
    """RunDirError when a file of `size` bytes is larger than `limit` (None: no limit)."""
    if limit is not None and size > limit:
        raise RunDirError(f"refused {path}: {size / 2**20:.1f} MiB is too large (at most "
                          f"{limit / 2**20:.1f} MiB)")


@contextlib.contextmanager
def temporary_beside(path: Path):
    """A new file (created exclusively, never through a link) beside `path`, yielded as
    (open binary file, its path); renamed onto `path` when the block ends without error, else
    removed. OSError (disk full, permissions, file-size limit) becomes RunDirError (exit 4)
    naming `path`; `path` is untouched then."""
    path = Path(path)
    tmp = None
    try:
        if path.parent.is_symlink():
            raise RunDirError(f"refused {path.parent}: a symbolic link inside a run directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        tmp = Path(name)
        os.fchmod(fd, 0o666 & ~_UMASK)  # as an ordinary new file (mkstemp makes it 0600)
        with os.fdopen(fd, "wb") as f:
            yield f, tmp
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise RunDirError(f"cannot write {path}: {e.strerror or e} (errno {e.errno}); "
                          f"everything committed before is intact") from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def check_replaceable(path: Path, what: str) -> None:
    """ConfigError (exit 2) unless `path` is new or a regular file: an output never replaces
    a symbolic link, a device, a FIFO or a folder, nor writes through one."""
    if os.path.lexists(path) and (os.path.islink(path) or not os.path.isfile(path)):
        raise ConfigError(f"{what}: {path} exists and is not a regular file (a link, device, "
                          f"FIFO or folder); nothing was written")


def write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (`temporary_beside`, fsync, rename)."""
    with temporary_beside(path) as (f, _):
        f.write(data)


def json_bytes(obj) -> bytes:
    return (json.dumps(obj, indent=2, allow_nan=True) + "\n").encode()


def write_json(path: Path, obj) -> None:
    write_bytes(path, json_bytes(obj))


def npz_bytes(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    return buffer.getvalue()


def write_npz(path: Path, arrays: dict) -> None:
    write_bytes(path, npz_bytes(arrays))


def read_json(path: Path, data: bytes | None = None) -> dict:
    """A JSON object from `path` (or of its already-read bytes `data`); RunDirError, exit 4,
    when missing, a link, corrupt or not an object."""
    if data is not None:
        _refuse_larger(path, len(data), JSON_LIMIT)
    try:
        value = json.loads(read_bytes(path, JSON_LIMIT) if data is None else data)
    except (ValueError, UnicodeDecodeError) as e:  # ValueError: an integer of 5000 digits, too
        raise RunDirError(f"corrupt file {path}: {e}") from None
    except RecursionError:
        raise RunDirError(f"corrupt file {path}: nested too deeply") from None
    if not isinstance(value, dict):
        raise RunDirError(f"corrupt file {path}: expected a JSON object")
    return value


def read_yaml(path: Path, data: bytes | None = None):
    """A YAML document of plain values from `path` (or of its already-read bytes `data`): no
    anchors or aliases (each alias would be a copy once the document is merged into a config:
    a few bytes could ask for gigabytes), at most JSON_LIMIT bytes; RunDirError (exit 4)
    otherwise."""
    import yaml

    class PlainLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent) or getattr(self.peek_event(), "anchor", None):
                raise yaml.YAMLError("anchors and aliases are not allowed")
            return super().compose_node(parent, index)

    if data is not None:
        _refuse_larger(path, len(data), JSON_LIMIT)
    try:
        return yaml.load((read_bytes(path, JSON_LIMIT) if data is None else data).decode(),
                         Loader=PlainLoader)
    except (UnicodeDecodeError, yaml.YAMLError) as e:
        raise RunDirError(f"corrupt file {path}: {e}") from None
    except RecursionError:
        raise RunDirError(f"corrupt file {path}: nested too deeply") from None


def open_npz(source: Path | bytes):
    """`np.load` of an npz archive (a file, or its bytes), pickles refused; ValueError "not an
    npz archive" for anything else (numpy would call it pickled data and suggest loading it
    unsafely)."""
    if isinstance(source, bytes):
        head, source = source[:2], io.BytesIO(source)
    else:
        with open(source, "rb") as f:
            head = f.read(2)
    if head != b"PK":
        raise ValueError("not an npz archive")
    return np.load(source, allow_pickle=False)


UNREADABLE = (ValueError, OSError, zipfile.BadZipFile, EOFError, RuntimeError,
              NotImplementedError)  # RuntimeError: encrypted; NotImplementedError: compression


def read_npz(path: Path, data: bytes | None = None) -> dict:
    """All arrays of an npz file (or of its already-read bytes `data`); RunDirError if missing,
    corrupt or holding objects, or when its arrays' headers claim more than a quarter of the
    memory free (a few compressed bytes can hold gigabytes of zeros): checked before any value
    is read."""
    data = read_bytes(path) if data is None else data
    if data[:2] != b"PK":
        raise RunDirError(f"corrupt file {path}: not an npz archive")
    claimed = sum(math.prod(shape) * dtype.itemsize
                  for shape, dtype in _headers(path, data).values())
    _check_fits(path, claimed, "its arrays")
    try:
        with open_npz(data) as f:
            return {k: f[k] for k in f.files}
    except UNREADABLE as e:
        raise RunDirError(f"corrupt file {path}: {e}") from None


def _check_fits(path: Path, size: int, what: str) -> None:
    """RunDirError when `size` bytes (what `path` holds once read) exceed a quarter of the
    memory free now."""
    available = available_memory()
    if available is not None and size > available // 4:
        raise RunDirError(f"refused {path}: {what} would take {size / 2**30:.1f} GiB, more "
                          f"than a quarter of the {available / 2**30:.1f} GiB free")


def _read_verified(path: Path, sha256: str, what: str) -> bytes:
    """The bytes of `path` if their SHA-256 is `sha256`; RunDirError naming the file if not."""
    if not path.is_file() and not path.is_symlink():
        raise RunDirError(f"missing {what} file {path}")
    data = read_bytes(path)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise RunDirError(f"corrupt {what} file {path}: checksum mismatch")
    return data


def live_writer(run_dir: Path) -> int | None:
    """The pid of another live process holding RUN_DIR/.lock (writing the run), else None."""
    path = confined(run_dir, ".lock")
    owner = _live_owner(path) if os.path.isfile(path) and not os.path.islink(path) else None
    return None if not owner or owner == os.getpid() else owner


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """Hold RUN_DIR/.lock (our pid) while writing; a second live writer is refused (RunInUse,
    exit 2). A lock left by a process that no longer exists is taken over; one this process
    already holds is held on (the lock is reentrant)."""
    path = confined(run_dir, ".lock")
    if os.path.isdir(path) and not os.path.islink(path):
        raise RunDirError(f"{path} is not a file: a run directory's .lock holds a writer's "
                          f"pid; remove the folder if no headbayes process uses {run_dir}")
    if _live_owner(path) == os.getpid():
        yield
        return
    for _ in range(2):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            owner = _live_owner(path)
            if owner is None:
                path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            who = f"process {owner}" if owner else "a process taking its lock now"
            raise RunInUse(f"{run_dir} is being written by {who} (lock {path}); wait for it "
                           f"or stop it first (if it is not headbayes, the lock is stale: "
                           f"delete {path}); nothing was changed") from None
        except OSError as e:  # a read-only directory, a full disk
            raise RunDirError(f"cannot write {path}: {e.strerror or e} (errno {e.errno}); "
                              f"nothing was changed") from None
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        break
    else:
        raise RunInUse(f"cannot take the lock {path}")
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _live_owner(path: Path) -> int | None:
    """The pid a lock file names when that process lives (also when it is another user's); 0
    for an empty lock, which a process writes its pid into right after making it; None for a
    stale lock (its process gone, or no pid > 0 in it) or none."""
    try:
        text = read_bytes(path).strip()
    except (RunDirError, FileNotFoundError):
        return None
    if not text:
        return 0
    try:
        owner = int(text)
        if owner <= 0:
            return None
        os.kill(owner, 0)
    except (ValueError, OverflowError, ProcessLookupError):
        return None
    except PermissionError:
        pass  # alive, another user's
    return owner


def read_manifest(run_dir: Path) -> dict:
    """chain/manifest.json, its shape checked: {"parts": [{"file", "draws", "sha256"}],
    "checkpoint": None | {"next_step", "state", "sha256", "counts"}}, every file name one the
    writer makes (PART_NAME, STATE_NAME); RunDirError (exit 4) otherwise."""
    path = confined(run_dir, MANIFEST)
    manifest = read_json(path)

    def entry_ok(entry, field, pattern, keys):
        """`entry[field]` a file name matching `pattern`, with its SHA-256 and `keys`."""
        return (isinstance(entry, dict) and {field, "sha256", *keys} <= entry.keys()
                and isinstance(entry[field], str) and pattern.fullmatch(entry[field])
                and isinstance(entry["sha256"], str) and SHA256.fullmatch(entry["sha256"]))

    parts, checkpoint = manifest.get("parts"), manifest.get("checkpoint")
    ok = isinstance(parts, list) and all(
        entry_ok(p, "file", PART_NAME, {"draws"}) and _count(p["draws"]) for p in parts)
    if checkpoint is not None:
        ok = ok and entry_ok(checkpoint, "state", STATE_NAME, {"next_step", "counts"})
        ok = ok and _count(checkpoint["next_step"]) and isinstance(checkpoint["counts"], dict)
        ok = ok and all(_count(v) for v in checkpoint["counts"].values())
    if not ok:
        raise RunDirError(f"corrupt file {path}: not a manifest headbayes writes (parts and "
                          f"checkpoint must name chain/part-NNNNN.npz and chain/state-N.npz "
                          f"files with their SHA-256)")
    for index, part in enumerate(parts):  # the writer numbers them 0, 1, 2, ...
        if part["file"] != f"chain/part-{index:05d}.npz":
            raise RunDirError(f"corrupt file {path}: entry {index} names chain part "
                              f"{part['file']}, expected chain/part-{index:05d}.npz (a part "
                              f"named twice or out of order)")
    return {"parts": parts, "checkpoint": checkpoint}


def check_progress(run_dir: Path, manifest: dict, sampler) -> None:
    """RunDirError unless the manifest's draws and checkpoint are what a run of `sampler`
    (its `warmup`, `keep`, `thin`) commits: at most `keep` draws, and a checkpoint at step
    warmup + draws x thin once a draw is kept (at most `warmup` before)."""
    draws = sum(part["draws"] for part in manifest["parts"])
    where = f"in {Path(run_dir) / MANIFEST}"
    if draws > sampler.keep:
        raise RunDirError(f"corrupt chain {where}: {draws} draws kept, more than sampler.keep "
                          f"({sampler.keep})")
    checkpoint = manifest["checkpoint"]
    if checkpoint is None:
        return
    step, expected = checkpoint["next_step"], sampler.warmup + draws * sampler.thin
    if (step != expected) if draws else (step > sampler.warmup):
        expected = (f"step {expected}: sampler.warmup {sampler.warmup} + draws x sampler.thin "
                    f"{sampler.thin}" if draws else f"at most sampler.warmup ({sampler.warmup})")
        raise RunDirError(f"corrupt chain {where}: checkpoint at step {step} does not follow "
                          f"the {draws} draws kept (expected {expected})")


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


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
            manifest = read_manifest(self.run_dir)
            self.parts, self.checkpoint = manifest["parts"], manifest.get("checkpoint")
        else:
            self.parts, self.checkpoint = [], None
            self._write_manifest()

    def _write_manifest(self) -> None:
        write_json(confined(self.run_dir, MANIFEST), {"parts": self.parts, "checkpoint": self.checkpoint})

    def commit(self, next_step: int, state_leaves: list, counts: dict, draws: dict | None = None,
               info: dict | None = None) -> None:
        """Commit optional draws ({leaf path: (chain, draw, *shape)}, info {name: (chain,
        draw)}) with the loop state reached at `next_step`."""
        if draws is not None and next(iter(draws.values())).shape[1] > 0:
            name = f"chain/part-{len(self.parts):05d}.npz"
            data = npz_bytes({**draws, **{INFO_PREFIX + k: v for k, v in (info or {}).items()}})
            write_bytes(confined(self.run_dir, name), data)
            self.parts.append({"file": name, "draws": int(next(iter(draws.values())).shape[1]),
                               "sha256": hashlib.sha256(data).hexdigest()})
        state_name = f"chain/state-{next_step:09d}.npz"
        data = npz_bytes({str(i): np.asarray(leaf) for i, leaf in enumerate(state_leaves)})
        write_bytes(confined(self.run_dir, state_name), data)
        previous = self.checkpoint
        self.checkpoint = {"next_step": int(next_step), "state": state_name,
                           "sha256": hashlib.sha256(data).hexdigest(), "counts": dict(counts)}
        self._write_manifest()
        if previous and previous["state"] != state_name:
            confined(self.run_dir, previous["state"]).unlink(missing_ok=True)

    def load_state(self) -> list:
        """The committed state's leaves, checksum verified (RunDirError if missing/corrupt)."""
        if not self.checkpoint:
            raise RunDirError(f"{self.run_dir / MANIFEST} names no checkpoint to resume from")
        path = confined(self.run_dir, self.checkpoint["state"])
        arrays = read_npz(path, _read_verified(path, self.checkpoint["sha256"], "checkpoint"))
        if set(arrays) != {str(i) for i in range(len(arrays))}:
            raise RunDirError(f"corrupt checkpoint file {path}: its arrays are not named 0, 1, "
                              f"2, ... (the loop state's leaves in order)")
        return [arrays[str(i)] for i in range(len(arrays))]


def verify_chain(run_dir: Path) -> None:
    """Check the SHA-256 of every committed part and the checkpoint (RunDirError naming the
    file), without parsing them."""
    manifest = read_manifest(run_dir)
    entries = [(p["file"], p["sha256"]) for p in manifest.get("parts", [])]
    if manifest.get("checkpoint"):
        entries.append((manifest["checkpoint"]["state"], manifest["checkpoint"]["sha256"]))
    for name, digest in entries:
        _read_verified(confined(run_dir, name), digest, "chain")


COUNTED = ("divergences", "grad_evals", "steps")  # step information summing counts per draw
MAX_MEMBERS = 10_000  # arrays in one npz file: far above any model's leaves


def _headers(path: Path, data: bytes) -> dict:
    """{array name: (shape, dtype)} of an npz file's bytes, read from each array's .npy header
    without reading its values; RunDirError when it is not such a file."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if len(archive.namelist()) > MAX_MEMBERS:
                raise ValueError(f"{len(archive.namelist())} arrays, more than {MAX_MEMBERS}")
            headers = {}
            for member in archive.namelist():
                with archive.open(member) as f:
                    version = np.lib.format.read_magic(f)
                    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                            else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read(f)
                headers[member.removesuffix(".npy")] = (tuple(shape), dtype)
            return headers
    except UNREADABLE as e:
        raise RunDirError(f"corrupt file {path}: {e}") from None


def _check_part_headers(run_dir: Path, parts: list, raw: list, leaves: dict | None) -> None:
    """Every part holds the same numeric arrays, (chain, draw, ...) with the manifest's number
    of draws and the first part's other axes, and all of them fit in the memory free now:
    RunDirError naming the part otherwise. A part whose headers claim more than its bytes
    could hold is refused before numpy allocates it. `leaves` ({name: shape of one draw}):
    the arrays besides the step information, each of them there and no other."""
    first, total = None, 0
    for part, (path, data) in zip(parts, raw):
        headers = _headers(path, data)
        if leaves is not None:
            held = {n: shape[2:] for n, (shape, _) in headers.items()
                    if not n.startswith(INFO_PREFIX)}
            wrong = next((n for n in sorted(set(held) | set(leaves))
                          if held.get(n) != leaves.get(n)), None)
            if wrong not in (None, *held):
                raise RunDirError(f"corrupt chain part {path}: it lacks the sampled leaf {wrong}")
            if wrong is not None and wrong not in leaves:
                raise RunDirError(f"corrupt chain part {path}: array {wrong!r} is no sampled "
                                  f"leaf of the run")
            if wrong is not None:
                raise RunDirError(f"corrupt chain part {path}: leaf {wrong} has draws of shape "
                                  f"{held[wrong]}, the model's is {leaves[wrong]}")
        chains = {shape[0] for shape, _ in headers.values() if shape}
        if len(chains) > 1:  # every leaf and statistic has one row per chain
            raise RunDirError(f"corrupt chain part {path}: its arrays have different numbers "
                              f"of chains {sorted(chains)}")
        for name, (shape, dtype) in headers.items():
            if dtype.kind not in "biuf" or len(shape) < 2 or shape[1] != part["draws"]:
                raise RunDirError(f"corrupt chain part {path}: array {name!r} has shape "
                                  f"{shape} and dtype {dtype}; the manifest gives it "
                                  f"{part['draws']} draws")
            total += math.prod(shape) * dtype.itemsize
        layout = {name: (shape[:1] + shape[2:], dtype) for name, (shape, dtype) in headers.items()}
        if first is not None and layout != first:
            raise RunDirError(f"inconsistent chain part {path}: its arrays differ from "
                              f"{parts[0]['file']}'s")
        first = layout
    _check_fits(run_dir / "chain", total, "the chain parts")


def load_chain(run_dir: Path) -> dict:
    """{leaf path: array (chain, draw, *shape)} from the committed parts, checksums verified."""
    return load_chain_and_info(run_dir)[0]


def load_chain_and_info(run_dir: Path, sampler=None, leaves: dict | None = None
                        ) -> tuple[dict, dict]:
    """(leaves, step information), each {name: array with axes (chain, draw, ...)}; every
    part's and the checkpoint's SHA-256 verified, and with the run's `sampler` options, its
    progress (`check_progress`); with `leaves` ({name: shape of one draw}), the parts' arrays
    checked against them from their headers. Step information that counts (COUNTED) must be
    finite and non-negative."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    if sampler is not None:
        check_progress(run_dir, manifest, sampler)
    parts = manifest["parts"]
    if manifest["checkpoint"]:  # small; a damaged one would fail a later resume
        checkpoint = manifest["checkpoint"]
        _read_verified(confined(run_dir, checkpoint["state"]), checkpoint["sha256"], "checkpoint")
    if not parts:
        raise RunDirError(f"no committed draws in {run_dir / 'chain'}")
    raw = []
    for part in parts:
        path = confined(run_dir, part["file"])
        raw.append((path, _read_verified(path, part["sha256"], "chain")))
    _check_part_headers(run_dir, parts, raw, leaves)  # before any array is allocated
    pieces = [read_npz(path, data) for path, data in raw]
    try:
        arrays = {k: np.concatenate([p[k] for p in pieces], axis=1) for k in pieces[0]}
    except (KeyError, ValueError) as e:
        raise RunDirError(f"inconsistent chain files in {run_dir / 'chain'}: {e}") from None
    chain = {k: v for k, v in arrays.items() if not k.startswith(INFO_PREFIX)}
    info = {k[len(INFO_PREFIX):]: v for k, v in arrays.items() if k.startswith(INFO_PREFIX)}
    odd = next((k for k, v in info.items() if k.rpartition(".")[2] in COUNTED
                and not (np.isfinite(v) & (v >= 0)).all()), None)
    if odd is not None:
        raise RunDirError(f"corrupt chain files in {run_dir / 'chain'}: step information "
                          f"{odd} holds values that are no counts")
    return chain, info
