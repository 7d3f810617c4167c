"""Which code a config's `model._target_` names, where it lies, and whether a config read from
a run directory may import it.

A run records the SHA-256 of its model module's source (`source_record`: every `.py` file of
the top-level module or package), signed with this account's key (an HMAC with the key in
`settings().source_key`, made on first use): a directory from someone else cannot make the
record, even for a file it brings beside itself. A config read back from a run directory
(`check_saved_target`) names a module that may be imported only when

- it lies in a folder the user vouches for (`--code DIR`, `load_run(path, code=DIR)`), or
- it lies in the working directory or a PYTHONPATH entry, outside any installed-packages
  folder, and its source is the one this account's run recorded (one's own runs need nothing
  more).

Never from the standard library, the installed packages or headbayes itself, whose public
source a stranger's directory could record (a config that reaches `hydra.utils.instantiate`
calls anything); and never a module inside a run directory or holding it: once a command
reads a run directory, an import hook (`guard_run_directory`) refuses every module found
there for the rest of the process, whatever imports it and whatever sys.path holds.
"""

import contextlib
import hashlib
import hmac
import importlib.abc
import importlib.util
import os
import secrets
import site
import sys
import sysconfig
from pathlib import Path

from headbayes.core.errors import ConfigError, RunDirError
from headbayes.core.settings import settings

__all__ = ["source_record", "check_saved_target", "vouched_folders", "import_path",
           "guard_run_directory",
           "MAX_SOURCE_FILES", "MAX_SOURCE_BYTES"]

MAX_SOURCE_FILES = 2000  # a larger package is not digested: it needs --code
MAX_SOURCE_BYTES = 64 * 2**20
_HEADBAYES = Path(__file__).resolve().parents[1]  # the package's own folder


def _top(target: str, key: str = "model._target_") -> str:
    if not all(part.isidentifier() for part in target.split(".")):
        raise RunDirError(f"{key} {target!r} is not a dotted Python name")
    return target.split(".", 1)[0]


def _spec_locations(spec) -> list[Path] | None:
    """The resolved file (a module) or folders (a package, a namespace package) of `spec`;
    None when it has none (built in, frozen)."""
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return [Path(p).resolve() for p in spec.submodule_search_locations]
    if spec.origin in (None, "built-in", "frozen") or not os.path.isfile(spec.origin):
        return None
    return [Path(spec.origin).resolve()]


def _find(top: str) -> list[Path] | None:
    """Where importing `top` now reads it from: the loaded module's own locations, else those
    the import system finds on the current sys.path (the guard below included)."""
    module = sys.modules.get(top)
    spec = (getattr(module, "__spec__", None) if module is not None
            else importlib.util.find_spec(top))
    return _spec_locations(spec)


def _digest(locations: list[Path]) -> str | None:
    """SHA-256 over every `.py` file of `locations` (relative name and bytes, in sorted order);
    None when they hold more than MAX_SOURCE_FILES files or MAX_SOURCE_BYTES bytes."""
    files = []
    for index, location in enumerate(locations):
        if location.is_file():
            files.append((f"{index}", location))
            continue
        for folder, dirs, names in os.walk(location):  # symbolic links to folders not followed
            dirs.sort()
            files += [(f"{index}/{Path(folder, n).relative_to(location)}", Path(folder, n))
                      for n in sorted(names) if n.endswith(".py")]
            if len(files) > MAX_SOURCE_FILES:
                return None
    digest, total = hashlib.sha256(), 0
    for name, path in files:
        try:
            data = path.read_bytes()
        except OSError:
            return None
        total += len(data)
        if total > MAX_SOURCE_BYTES:
            return None
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()


_VOUCHED: list[Path] = []  # the --code folders of this command (`vouched_folders`)


@contextlib.contextmanager
def import_path(folders=None):
    """Within: `folders` (default: this command's --code folders) and then the working
    directory first on sys.path, where a model's module is imported from; afterwards sys.path
    as it was, so no library imported later comes from those folders (a received run's
    download folder may hold a planted matplotlib)."""
    names = [str(f) for f in (_VOUCHED if folders is None else folders)] + [str(Path.cwd())]
    before = list(sys.path)
    sys.path[:] = names + [p for p in sys.path if p not in names]
    try:
        yield
    finally:
        sys.path[:] = before


def _account_key(create: bool) -> bytes | None:
    """This account's key (32 random bytes, a file only its owner reads), made when `create`
    and missing; None when there is none or it cannot be made (read-only home)."""
    path = settings().source_key
    for _ in range(2):
        try:
            key = path.read_bytes()
            return key if len(key) >= 32 else None
        except OSError:
            if not create:
                return None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            continue  # another process made it meanwhile: read it
        except OSError:
            return None
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    return None


def _signature(key: bytes, module: str, sha256: str) -> str:
    return hmac.new(key, f"{module}\0{sha256}".encode(), "sha256").hexdigest()


def source_record(target: str) -> dict:
    """{"module", "sha256", "signature"} of the module `target` names, as a run imports it (the
    working directory first); sha256 None when it is too large to digest, signature None when
    this account has no key."""
    top = _top(target)
    with import_path(()):
        locations = _find(top)
    sha256 = _digest(locations) if locations else None
    key = _account_key(create=True) if sha256 else None
    return {"module": top, "sha256": sha256,
            "signature": _signature(key, top, sha256) if key else None}


def _ids(path: Path) -> list[tuple[int, int]]:
    """(device, inode) of `path` and of each folder above it: one file is recognised whatever
    the letter case or the links that name it."""
    ids = []
    for part in (path, *path.parents):
        try:
            stat = os.stat(part)
        except OSError:
            continue
        ids.append((stat.st_dev, stat.st_ino))
    return ids


def _within(path: Path, folder: Path) -> bool:
    """`path` is `folder` or lies below it."""
    try:
        stat = os.stat(folder)
    except OSError:
        return path == folder or path.is_relative_to(folder)
    return (stat.st_dev, stat.st_ino) in _ids(path)


def _overlaps(location: Path, run_dir: Path) -> bool:
    return _within(location, run_dir) or _within(run_dir, location)


class _RunDirectoryGuard(importlib.abc.MetaPathFinder):
    """First on sys.meta_path once a command reads a run directory: a module that lies inside
    one, or a package folder that holds one, cannot be imported for the rest of the process."""

    def __init__(self):
        self.run_dirs: list[Path] = []

    def find_spec(self, name, path=None, target=None):
        if not self.run_dirs:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        for location in _spec_locations(spec) or ():
            for run_dir in self.run_dirs:
                if _overlaps(location, run_dir):
                    raise ImportError(f"module '{name}' at {location} lies inside the run "
                                      f"directory {run_dir} or holds it; code is never "
                                      f"imported from a run directory")
        return spec


_GUARD = _RunDirectoryGuard()


def guard_run_directory(run_dir: Path) -> None:
    """Refuse, from now on in this process, to import any module from `run_dir`."""
    run_dir = Path(run_dir).resolve()
    if run_dir not in _GUARD.run_dirs:
        _GUARD.run_dirs.append(run_dir)
    if _GUARD not in sys.meta_path:
        sys.meta_path.insert(0, _GUARD)


def inside_read_run(path: Path) -> bool:
    """True when `path` (as named, or its links resolved) lies inside a run directory this
    process has read: a folder a received directory could have filled (or linked elsewhere),
    such as an `outputs/jax_cache` of a command run from inside it."""
    path = Path(path).absolute()
    return any(_within(candidate, run_dir) for run_dir in _GUARD.run_dirs
               for candidate in (path, path.resolve()))


def _is_library(location: Path) -> bool:
    """In the standard library, an installed-packages folder (a virtual environment's, the
    user's, the system's) or headbayes itself (an editable install's source folder)."""
    roots = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots |= {*site.getsitepackages(), site.getusersitepackages()}
    return (any(_within(location, Path(r).resolve()) for r in roots if r)
            or any(part in ("site-packages", "dist-packages") for part in location.parts)
            or _within(location, _HEADBAYES) or _within(_HEADBAYES, location)
            or location.name == "hydra_plugins")


def vouched_folders(folders) -> tuple[Path, ...]:
    """The `--code` folders, resolved; a saved config's module is imported from them, then
    from the working directory (`import_path`); ConfigError (exit 2) for one that is not a
    folder."""
    resolved = []
    for folder in folders or ():
        path = Path(folder)
        if not path.is_dir():
            raise ConfigError(f"--code: {folder} is not a folder (give the folder that holds "
                              f"your model's module)")
        resolved.append(path.resolve())
    _VOUCHED[:] = resolved
    return tuple(resolved)


def check_saved_target(target: str, where: Path, run_dir: Path, recorded: dict | None,
                       code: tuple[Path, ...] = (), key: str = "model._target_") -> None:
    """Allow importing `target` from a config read from `where` in `run_dir`, or refuse:
    RunDirError (exit 4) for a module inside the run directory (or holding it), outside the
    working directory, PYTHONPATH and `code`, in the standard library or installed packages,
    or a name that is not a dotted Python name; ConfigError (exit 2) for one not found or
    whose source is not the recorded one, saying to pass --code. `recorded` is the run's
    `source_record` (None: the run has none). Nothing is imported; from now on nothing is
    imported from `run_dir` (`guard_run_directory`)."""
    top = _top(target, key)
    run_dir = Path(run_dir).resolve()
    guard_run_directory(run_dir)
    hint = "pass --code DIR (the folder holding it) if you trust it"
    for folder in code:
        if _within(folder, run_dir):
            raise RunDirError(f"--code {folder}: a folder inside the run directory {run_dir} is "
                              f"never trusted; pass the folder of your own module")
    try:
        with import_path(code):  # where `models.base._import_target` will import it from
            locations = _find(top)
    except ImportError as e:  # the guard: it lies in the run directory
        raise RunDirError(f"{where} names {key} {target!r}: {e}") from None
    if locations is None and (top in sys.builtin_module_names or top in sys.stdlib_module_names):
        raise RunDirError(f"{where} names {key} {target!r}, from Python's own "
                          f"modules; a run directory's config may not choose such code")
    if locations is None:
        raise ConfigError(f"{where} names {key} {target!r}, but there is no module "
                          f"'{top}' to import; run the command from the folder that holds it, "
                          f"or {hint}")
    for location in locations:
        if _overlaps(location, run_dir):
            raise RunDirError(f"{where} names {key} {target!r}, whose module "
                              f"{location} lies inside the run directory or holds it; code is "
                              f"never imported from a run directory")
    if all(any(_within(location, folder) for folder in code) for location in locations):
        return
    places = [Path.cwd(), *(Path(p) for p in settings().pythonpath if os.path.isdir(p))]
    if any(_is_library(location) for location in locations) or not all(
            any(_within(location, place.resolve()) for place in places)
            for location in locations):
        raise RunDirError(f"{where} names {key} {target!r} from {locations[0]}, "
                          f"outside your working directory and PYTHONPATH or among the "
                          f"installed packages; a run directory's config may not choose such "
                          f"code. If the model is yours, {hint}")
    expected = (recorded or {}).get("sha256")
    if not isinstance(expected, str) or recorded.get("module") != top:
        raise ConfigError(f"{where} names {key} {target!r}, and the run records no "
                          f"digest of its source; {hint}")
    key = _account_key(create=False)
    signature = recorded.get("signature")
    if key is None or not isinstance(signature, str) or not hmac.compare_digest(
            signature, _signature(key, top, expected)):
        raise ConfigError(f"{where} names {key} {target!r}, and its record of the "
                          f"source was not made by this account (another user's or machine's "
                          f"run, or edited); {hint}")
    if _digest(locations) != expected:
        raise ConfigError(f"{where} names {key} {target!r}: module '{top}' at "
                          f"{locations[0]} is not the source the run was made with; {hint}")
