"""Which code a config's `model._target_` names, where it lies, and whether a config read from
a run directory may import it.

A run records the SHA-256 of its model module's source (`source_record`: every `.py` file of
the top-level module or package, found without importing anything). A config read back from
a run directory (`check_saved_target`) names a module that may be imported only when

- it lies in a folder the user vouches for (`--code DIR`, `load_run(path, code=DIR)`), or
- it lies in the working directory or a PYTHONPATH entry and its source is the one the run
  recorded (one's own runs need nothing more);

and never when it lies inside the run directory or holds it, whatever its layout (a plain
folder, a package, a symbolic link), nor from the standard library or the installed packages,
whose public source a stranger's directory could name (a config that reaches
`hydra.utils.instantiate` calls anything).
"""

import hashlib
import importlib.machinery
import os
import sys
import sysconfig
from pathlib import Path

from headbayes.core.errors import ConfigError, RunDirError
from headbayes.core.settings import settings

__all__ = ["source_record", "check_saved_target", "vouched_folders", "own_places",
           "MAX_SOURCE_FILES", "MAX_SOURCE_BYTES"]

MAX_SOURCE_FILES = 2000  # a larger package is not digested: it needs --code
MAX_SOURCE_BYTES = 64 * 2**20
_HEADBAYES = Path(__file__).resolve().parents[1]  # the package's own folder


def _top(target: str) -> str:
    top = target.split(".", 1)[0]
    if not all(part.isidentifier() for part in target.split(".")):
        raise RunDirError(f"model._target_ {target!r} is not a dotted Python name")
    return top


def _locations(top: str, search: list[str]) -> list[Path] | None:
    """The resolved file (a module) or folders (a package, a namespace package) that importing
    `top` would read: the loaded module's own when it is imported, else the first found on
    `search`; None when there is none (or it is built in)."""
    module = sys.modules.get(top)
    spec = (getattr(module, "__spec__", None) if module is not None
            else importlib.machinery.PathFinder.find_spec(top, search))
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return [Path(p).resolve() for p in spec.submodule_search_locations]
    if spec.origin in (None, "built-in", "frozen") or not os.path.isfile(spec.origin):
        return None
    return [Path(spec.origin).resolve()]


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


def own_places() -> list[str]:
    """Where a run imports its model from before the installed packages: the working
    directory and the PYTHONPATH entries."""
    return [str(Path.cwd()), *(p for p in settings().pythonpath if os.path.isdir(p))]


def source_record(target: str) -> dict:
    """{"module", "sha256"} of the module `target` names, as a run imports it (the working
    directory first); sha256 None when it is too large to digest."""
    top = _top(target)
    locations = _locations(top, [*own_places(), *sys.path])
    return {"module": top, "sha256": _digest(locations) if locations else None}


def _within(path: Path, folder: Path) -> bool:
    return path == folder or path.is_relative_to(folder)


def _is_library(location: Path) -> bool:
    """In the standard library, an installed-packages folder or headbayes itself (an editable
    install's source folder included)."""
    roots = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    return (any(_within(location, Path(r).resolve()) for r in roots if r)
            or _within(location, _HEADBAYES) or _within(_HEADBAYES, location)
            or location.name == "hydra_plugins")


def vouched_folders(folders) -> tuple[Path, ...]:
    """The `--code` folders, resolved and put first on sys.path (a saved config's module is
    imported from them); ConfigError (exit 2) for one that is not a folder."""
    resolved = []
    for folder in folders or ():
        path = Path(folder)
        if not path.is_dir():
            raise ConfigError(f"--code: {folder} is not a folder (give the folder that holds "
                              f"your model's module)")
        resolved.append(path.resolve())
    for path in reversed(resolved):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    return tuple(resolved)


def check_saved_target(target: str, where: Path, run_dir: Path, recorded: dict | None,
                       code: tuple[Path, ...] = ()) -> None:
    """Allow importing `target` from a config read from `where` in `run_dir`, or refuse:
    RunDirError (exit 4) for a module inside the run directory (or holding it), a standard or
    installed one, or a name that is not a dotted Python name; ConfigError (exit 2) for one
    not found or whose source is not the recorded one, saying to pass --code. `recorded` is
    the run's `source_record` (None: the run has none); nothing is imported."""
    top = _top(target)
    run_dir = Path(run_dir).resolve()
    locations = _locations(top, [*map(str, code), *own_places(), *sys.path])  # import's order
    hint = "pass --code DIR (the folder holding it) if you trust it"
    if locations is None:
        raise ConfigError(f"{where} names model._target_ {target!r}, but there is no module "
                          f"'{top}' to import; run the command from the folder that holds it, "
                          f"or {hint}")
    for location in locations:
        if _within(location, run_dir) or _within(run_dir, location):
            raise RunDirError(f"{where} names model._target_ {target!r}, whose module "
                              f"{location} lies inside the run directory or holds it; code is "
                              f"never imported from a run directory")
    if any(_within(location, folder) for location in locations for folder in code):
        return
    if any(_is_library(location) for location in locations):
        raise RunDirError(f"{where} names model._target_ {target!r} from the standard library "
                          f"or the installed packages ({locations[0]}); a run directory's "
                          f"config may not choose such code. If the model is yours, {hint}")
    expected = (recorded or {}).get("sha256")
    if expected is None or recorded.get("module") != top:
        raise ConfigError(f"{where} names model._target_ {target!r}, and the run records no "
                          f"digest of its source; {hint}")
    if _digest(locations) != expected:
        raise ConfigError(f"{where} names model._target_ {target!r}: module '{top}' at "
                          f"{locations[0]} is not the source the run was made with; {hint}")
