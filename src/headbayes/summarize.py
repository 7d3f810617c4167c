"""`headbayes summarize SWEEP_DIR`: one row per job (its overrides and metrics) and summary.csv."""

import csv
import io
from pathlib import Path

from headbayes import store
from headbayes.errors import ConfigError, RunDirError
from headbayes.report import METRIC_KEYS

__all__ = ["collect_jobs", "write_summary"]


def _overrides(job_dir: Path) -> dict:
    import yaml

    path = job_dir / ".hydra" / "overrides.yaml"
    try:
        items = yaml.safe_load(path.read_text()) or []
    except (OSError, yaml.YAMLError) as e:
        raise RunDirError(f"cannot read {path}: {e}") from None
    return dict(item.split("=", 1) for item in items if "=" in item)


def _status(job_dir: Path) -> tuple[str, dict]:
    """('ok' | 'failed' | 'incomplete', metrics)."""
    status = (store.read_json(job_dir / "status.json")
              if (job_dir / "status.json").is_file() else {})
    if status.get("status") == "failed":
        return f"failed (exit {status.get('exit_code')})", {}
    if (job_dir / "metrics.json").is_file():
        return "ok", store.read_json(job_dir / "metrics.json")
    return "incomplete", {}


def collect_jobs(sweep_dir: Path) -> list[dict]:
    """Rows for every job directory (one holding `.hydra/`), sorted by job number."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ConfigError(f"sweep directory {sweep_dir} does not exist")
    job_dirs = [d for d in sweep_dir.iterdir() if (d / ".hydra").is_dir()]
    if not job_dirs:
        raise RunDirError(f"no job directories (with .hydra/) in {sweep_dir}")
    job_dirs.sort(key=lambda d: (0, int(d.name)) if d.name.isdigit() else (1, d.name))
    rows = []
    for job_dir in job_dirs:
        status, figures = _status(job_dir)
        rows.append({"job": job_dir.name, **_overrides(job_dir), "status": status,
                     **{k: figures.get(k) for k in METRIC_KEYS}})
    return rows


def write_summary(sweep_dir: Path, rows: list[dict]) -> Path:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows(rows)
    path = Path(sweep_dir) / "summary.csv"
    store.write_bytes(path, buffer.getvalue().encode())
    return path
