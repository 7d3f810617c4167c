"""Editing a finished run's files in a test, as anyone holding the directory can."""

import hashlib
import json
from pathlib import Path


def rerecord(run_dir) -> None:
    """Recompute checksums.json after editing recorded files: the record catches files changed
    by accident, while a test that plays someone who edits them on purpose rewrites it too."""
    from headbayes.core.rundir import RunFiles

    record = {name: hashlib.sha256((Path(run_dir) / name).read_bytes()).hexdigest()
              for name in RunFiles.RECORDED if (Path(run_dir) / name).is_file()}
    (Path(run_dir) / RunFiles.CHECKSUMS).write_text(json.dumps(record))


def replace_with(path, kind: str, link_to=None) -> None:
    """Put `kind` where `path` was (a file, a folder or nothing): "link" (a symbolic link to
    `link_to`), "folder", "fifo", or "remove" (nothing)."""
    import os
    import shutil

    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "link":
        path.symlink_to(link_to)
    elif kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
