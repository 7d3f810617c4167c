"""`headbayes summarize SWEEP_DIR`: one row per job (its overrides and metrics) and summary.csv."""

import csv
import io
from pathlib import Path

from headbayes.core import store
from headbayes.core.errors import ConfigError, RunDirError
from headbayes.core.rundir import RunFiles
from headbayes.report.figures import METRIC_KEYS, NESTED, checked_figures, flat_figures
from headbayes.report.plots import _pyplot, _save

__all__ = ["collect_jobs", "write_summary", "markdown_table", "table_columns", "table_cell",
           "checked_metrics", "plot_against_sampled", "TABLE_KEYS"]

# The columns of the terminal and markdown tables, each shown when some job has it
# (summary.csv has every metric): the held-out figures of a run with a test split too.
TABLE_KEYS = ("status", "sampled", "rel_l2", "band_median", "test_rmse", "test_nll",
              "test_coverage_90", "accuracy", "ece", "rhat_max", "ess_bulk_min", "divergences",
              "mean_z_max", "var_ratio_min", "var_ratio_max", "grad_evals", "wall_s", "verdict")
ROW_KEYS = ("status", "sampled", "grad_evals", "wall_s")  # a row's figures besides its metrics


def _sampled_size(files: RunFiles) -> int | None:
    return files.read_json(files.MASK).get("sampled_size") if files.has(files.MASK) else None


def _costs(files: RunFiles) -> dict:
    """Gradient evaluations (joint training, warmup and sampling) and wall time of a job, from
    meta.json."""
    meta = files.read_json(files.META) if files.has(files.META) else {}
    counts, timings = meta.get("counts"), meta.get("timings")
    evals = [v for k, v in counts.items() if k.startswith("grad_evals")] if isinstance(
        counts, dict) else [None]
    wall = timings.get("total_s") if isinstance(timings, dict) else None
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    return {"grad_evals": sum(evals) if evals and all(map(number, evals)) else None,
            "wall_s": wall if number(wall) else None}


def _status(files: RunFiles) -> tuple[str, dict]:
    """('ok' | 'failed' | 'incomplete', metrics)."""
    status = files.status()
    if status.get("status") == "failed":
        return f"failed (exit {status.get('exit_code')})", {}
    if files.has(files.METRICS):
        return "ok", checked_figures(files.read_json(files.METRICS), files.path(files.METRICS))
    return "incomplete", {}


def collect_jobs(sweep_dir: Path) -> list[dict]:
    """Rows for every job directory (one holding `.hydra/`; a symbolic link is not followed),
    sorted by job number; every job's chain checksums are verified first, and a job with a
    damaged file is a row with status `damaged (exit 4)` and the reason in `damage`, without
    figures."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ConfigError(f"sweep directory {sweep_dir} does not exist")
    job_dirs = [d for d in sweep_dir.iterdir() if not d.is_symlink() and RunFiles(d).is_job()]
    if not job_dirs:
        raise RunDirError(f"no job directories (with .hydra/) in {sweep_dir}")
    job_dirs.sort(key=lambda d: (0, int(d.name)) if d.name.isdigit() else (1, d.name))
    rows = []
    for job_dir in job_dirs:
        files = RunFiles(job_dir)
        try:
            files.verify_chain()  # never summarise figures of a damaged chain
            status, figures = _status(files)
            overrides = {k: v for k, v in files.hydra_overrides().items()
                         if k not in ("job", "status", "sampled", "damage")}  # ours, not a job's
            rows.append({"job": job_dir.name, **overrides, "status": status,
                         "sampled": _sampled_size(files),
                         **flat_figures(figures, METRIC_KEYS), **_costs(files)})
        except RunDirError as e:
            rows.append({"job": job_dir.name, "status": "damaged (exit 4)", "damage": str(e)})
    return rows


def write_summary(sweep_dir: Path, rows: list[dict]) -> Path:
    """summary.csv: one row per job; a text cell that a spreadsheet would run as a formula
    (=, +, -, @ first: an override a job's files set) is written with a ' before it."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows({k: _inert(v) for k, v in row.items()} for row in rows)
    path = Path(sweep_dir) / "summary.csv"
    store.check_replaceable(path, "summarize")
    store.write_bytes(path, buffer.getvalue().encode())
    return path


def _inert(value):
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        try:
            float(value)  # a number such as -1e-3 stays as it is
        except ValueError:
            return "'" + value
    return value


def _nested(key: str) -> bool:
    """A flattened entry of a nested metric (`groups.NAME.KEY`, `coefficients.NAME.KEY`)."""
    return key.split(".", 1)[0] in NESTED and "." in key


def table_columns(rows: list[dict], metrics=None) -> list[str]:
    """job, the overrides that differ between jobs, then the TABLE_KEYS present in any row;
    with `metrics` (keys of `checked_metrics`), status and those instead of TABLE_KEYS."""
    overrides = [k for k in dict.fromkeys(k for row in rows for k in row)
                 if k not in METRIC_KEYS and not _nested(k)
                 and k not in ("job", "damage", *ROW_KEYS)]
    varying = [k for k in overrides if len({str(row.get(k)) for row in rows}) > 1] or overrides
    if metrics is not None:
        return ["job", *varying, "status", *(k for k in metrics if k != "status")]
    present = [k for k in TABLE_KEYS if any(row.get(k) is not None for row in rows)]
    return ["job", *varying, *present]


def checked_metrics(text: str, rows: list[dict]) -> list[str]:
    """The keys of `--metrics KEY,...`: metrics.json keys (a Gibbs group's as
    groups.NAME.KEY, a physics run's coefficients.NAME.KEY) or a row's own figures; ConfigError
    naming the choices otherwise."""
    keys = [k.strip() for k in text.split(",") if k.strip()]
    known = [*ROW_KEYS, *METRIC_KEYS, *(k for row in rows for k in row if _nested(k))]
    unknown = [k for k in keys if k not in known]
    if unknown or not keys:
        raise ConfigError(f"--metrics: unknown key(s) {unknown or text!r}; choose from "
                          f"{', '.join(dict.fromkeys(known))}")
    return keys


def table_cell(row: dict, column: str, format_value) -> str:
    """A cell of the terminal/markdown table: the verdict shortened to ok / WARN."""
    value = row.get(column)
    if column == "verdict" and value is not None:
        return "ok" if value == "ok" else "WARN"
    return format_value(value)


def markdown_table(rows: list[dict], format_value, metrics=None) -> str:
    columns = table_columns(rows, metrics)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(table_cell(row, c, format_value) for c in columns) + " |")
    return "\n".join(lines)


def plot_against_sampled(sweep_dir: Path, rows: list[dict], metrics: list[str]) -> Path:
    """One panel per metric: its value against the number of sampled parameters, per job."""
    plt = _pyplot()
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    done = [r for r in rows if r["status"] == "ok" and r.get("sampled")]
    labels = table_columns(rows)[1:2]  # the first override that varies names each point
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.6),
                             layout="constrained", squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        points = [(r["sampled"], r[metric], r.get(labels[0], r["job"]) if labels else r["job"])
                  for r in done if r.get(metric) is not None]
        ax.plot([p[0] for p in points], [p[1] for p in points], "o")
        for x, y, label in points:
            ax.annotate(str(label), (x, y), fontsize=7, textcoords="offset points",
                        xytext=(3, 3))
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("sampled parameters")
        ax.set_ylabel(metric)
    path = Path(sweep_dir) / f"{'_'.join(metrics)}_vs_sampled.png"
    _save(fig, path)
    plt.close(fig)
    return path
