"""A run's own copy of the user's data files, so the run directory is self-contained.

A run from `data.path` (and `data.test_path`) copies each file into `RUN_DIR/inputs/` when it
starts, reading the file once: the copy is what the run samples with, and data.json records its
name, SHA-256 and the source it came from. A `uci` run copies the files of its split from
`data.root` into `RUN_DIR/inputs/root/` the same way (data.json: the SHA-256 of each). Every
later command (report, resume, export, predict) reads the copies, from any working directory,
after checking their SHA-256: a changed copy is a RunDirError (exit 4) naming it, never other
numbers, and a config naming a file or folder with no copy is refused, never read.
run_config.json keeps the paths as typed.
"""

import dataclasses
import hashlib
from pathlib import Path

from headbayes.core import store
from headbayes.core.errors import ConfigError, RunDirError
from headbayes.datasets.files import regular_file

__all__ = ["FILE_KEYS", "copy_inputs", "with_copies"]

FILE_KEYS = ("path", "test_path")  # data options that name a user's file
FOLDER_KEY = "root"  # the data option that names a folder of files (uci)
DIRECTORY = "inputs"


def _folder_files(options) -> list[str]:
    """The files of `data.root` a uci run reads: the table, the columns and its split's index
    files (none for a gap split, which follows from the table)."""
    split = ([] if getattr(options, "gap", None) is not None else
             [f"index_train_{options.split}.txt", f"index_test_{options.split}.txt"])
    return ["data.txt", "index_features.txt", "index_target.txt", *split]


def copy_inputs(files, cfg) -> tuple[object, dict]:
    """Copy the files `cfg.data` names into RUN_DIR/inputs/; return (`cfg` reading the copies,
    {key: {"copy", "sha256", "source"}} for data.json). A config naming no file is returned
    unchanged with {}."""
    records = {}
    for key in FILE_KEYS:
        typed = getattr(cfg.data, key, "")
        if not typed:
            continue
        source = regular_file(typed, f"data.{key}").resolve()
        try:
            content = source.read_bytes()
        except OSError as e:
            raise ConfigError(f"data.{key}: cannot read {typed!r}: {e.strerror or e} "
                              f"(relative paths start at {Path.cwd()})") from None
        name = f"{DIRECTORY}/{key}{_suffix(source)}"
        store.write_bytes(files.path(name), content)
        records[key] = {"copy": name, "sha256": hashlib.sha256(content).hexdigest(),
                        "source": str(source)}
    if getattr(cfg.data, FOLDER_KEY, ""):
        records[FOLDER_KEY] = _copy_folder(files, cfg.data)
    return _reading(files, cfg, records), records


def _copy_folder(files, options) -> dict:
    """Copy the files a uci run reads into RUN_DIR/inputs/root/; their record for data.json.
    A missing one is left for the dataset's reader to name."""
    folder = Path(getattr(options, FOLDER_KEY)).expanduser()
    copied = {}
    for name in _folder_files(options):
        if not (folder / name).is_file():
            continue
        content = regular_file(str(folder / name), "data.root").read_bytes()
        store.write_bytes(files.path(f"{DIRECTORY}/{FOLDER_KEY}/{name}"), content)
        copied[name] = hashlib.sha256(content).hexdigest()
    return {"copy": f"{DIRECTORY}/{FOLDER_KEY}", "files": copied,
            "source": str(folder.resolve())}


def with_copies(files, cfg, records: dict):
    """`cfg` reading the run's copies listed in `records` (data.json's "files"), each checked
    against its SHA-256 (RunDirError naming a missing or changed copy, or a data file the
    config names that has no copy)."""
    if not isinstance(records, dict):
        raise RunDirError(f"corrupt file {files.path(files.DATA)}: 'files' is not a mapping")
    uncopied = [key for key in (*FILE_KEYS, FOLDER_KEY)
                if getattr(cfg.data, key, "") and key not in records]
    if uncopied:  # a path from the directory's own files is never followed outside it
        raise RunDirError(f"the run's config names data.{uncopied[0]} "
                          f"{getattr(cfg.data, uncopied[0])!r} and {files.root} holds no copy of "
                          f"it (inputs/, data.json); refusing to read a file outside the run "
                          f"directory")
    for key, record in records.items():
        if key == FOLDER_KEY and isinstance(record, dict):
            _check_folder(files, cfg.data, record)
            continue
        if key not in FILE_KEYS or not isinstance(record, dict):
            raise RunDirError(f"corrupt file {files.path(files.DATA)}: bad entry {key!r}")
        path = files.path(str(record.get("copy", "")))
        if not (path.name.startswith(key) and path.parent.name == DIRECTORY):
            raise RunDirError(f"corrupt file {files.path(files.DATA)}: bad copy name {path}")
        _check_copy(path, record.get("sha256"))
    return _reading(files, cfg, records)


def _check_folder(files, options, record: dict) -> None:
    """The run's copy of its uci folder: every file of its split, each unchanged."""
    copied = record.get("files")
    if (record.get("copy") != f"{DIRECTORY}/{FOLDER_KEY}" or not isinstance(copied, dict)
            or set(copied) != set(_folder_files(options))):
        raise RunDirError(f"corrupt file {files.path(files.DATA)}: bad entry {FOLDER_KEY!r}")
    for name, sha256 in copied.items():
        _check_copy(files.path(f"{DIRECTORY}/{FOLDER_KEY}/{name}"), sha256)


def _check_copy(path: Path, sha256) -> None:
    """RunDirError unless the run's copy at `path` still has the SHA-256 data.json records."""
    if store.sha256_of(path) != sha256:
        raise RunDirError(f"the run's copy of its data {path} has changed since the run "
                          f"(SHA-256 differs from data.json); refusing to use other data")


def _reading(files, cfg, records: dict):
    if not records:
        return cfg
    paths = {key: str(files.path(record["copy"]).resolve()) for key, record in records.items()}
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, **paths))


def _suffix(source: Path) -> str:
    """The source's suffix when it is a plain one (.csv, .npz, ...), else none."""
    suffix = source.suffix.lower()
    return suffix if store.NAME.fullmatch(suffix) and len(suffix) <= 8 else ""
