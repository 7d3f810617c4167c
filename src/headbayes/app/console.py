"""Everything printed to the terminal: progress bar and rich tables.

Every path, value and message is printed as text: the consoles parse no markup and no emoji
codes (a run directory named `m[red]y` prints as `m[red]y`); colour is given by `style=`.
"""

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from headbayes.core.settings import settings

__all__ = ["stdout", "stderr", "sampling_progress", "metrics_table", "groups_table",
           "coefficients_table", "print_report", "leaf_table_view", "format_value", "error"]

LITERAL = {"markup": False, "emoji": False, "highlight": False}
stdout = Console(**LITERAL)
if not stdout.is_terminal and not settings().columns_set:
    stdout = Console(width=160, **LITERAL)  # logs and pipes: wide tables stay readable
stderr = Console(stderr=True, **LITERAL)


class sampling_progress:
    """Context manager giving `update(kind, steps, total, draws)`: a progress bar showing
    steps, draws kept and steps per second. In Jupyter an HTML bar updated in place; when
    stderr is no terminal (a log file, a cluster's job output) plain lines instead: one when
    the job starts, then one when the stage changes and at most every LOG_EVERY seconds."""

    LOG_EVERY = 30.0

    def __enter__(self):
        self._notebook = _NotebookBar() if stderr.is_jupyter else None
        if self._notebook is not None:
            return self._notebook.update
        self._logged = (None, time.perf_counter())  # (stage, when) of the last plain line
        if not stderr.is_terminal:
            stderr.print("building the model and compiling the sampling loop ...")
        self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                             MofNCompleteColumn(), TextColumn("steps"),
                             TextColumn("{task.fields[draws]} draws kept"),
                             TextColumn("{task.fields[rate]} steps/s"), TimeElapsedColumn(),
                             console=stderr, disable=not stderr.is_terminal)
        self._bar.__enter__()
        self._task = self._bar.add_task("compiling", total=None, draws=0, rate="-")
        self._start = None
        return self.update

    def update(self, kind: str, steps: int, total: int, draws: int) -> None:
        now = time.perf_counter()
        if self._start is None:
            self._start = (now, 0)
        t0, s0 = self._start
        rate = _rate(steps - s0, now - t0)
        self._bar.update(self._task, description=kind, completed=steps, total=total,
                         draws=draws, rate=rate)
        stage, when = self._logged
        if not stderr.is_terminal and (kind != stage or now - when >= self.LOG_EVERY):
            stderr.print(f"{kind}: {steps:,}/{total:,} steps, {draws:,} draws kept, "
                         f"{rate} steps/s, {now - t0:.0f} s")
            self._logged = (kind, now)

    def __exit__(self, *exc):
        if self._notebook is not None:
            self._notebook.close()
        else:
            self._bar.__exit__(*exc)


def _rate(steps: int, seconds: float) -> str:
    """Steps per second as the bars show it ("-" before the first step is timed)."""
    return f"{steps / seconds:,.0f}" if seconds > 0 and steps > 0 else "-"


class _NotebookBar:
    """The progress bar of a Jupyter cell: one HTML `<progress>` line, redrawn in place
    (IPython's display handles; no widget library) at most every EVERY seconds."""

    EVERY = 0.25

    def __init__(self):
        from IPython.display import HTML, display

        self._html = HTML
        self._start = None
        self._shown = 0.0
        self._line = "building the model and compiling the sampling loop ..."
        self._handle = display(HTML(self._line), display_id=True)

    def update(self, kind: str, steps: int, total: int, draws: int) -> None:
        import html

        now = time.perf_counter()
        if self._start is None:
            self._start = (now, steps)
        t0, s0 = self._start
        rate = _rate(steps - s0, now - t0)
        self._line = (f"<progress value='{steps}' max='{max(total, 1)}'></progress> "
                      f"{html.escape(kind)} {steps:,}/{total:,} steps, {draws:,} draws kept, "
                      f"{rate} steps/s, {now - t0:.0f} s")
        if now - self._shown >= self.EVERY or steps >= total:
            self._handle.update(self._html(self._line))
            self._shown = now

    def close(self) -> None:
        self._handle.update(self._html(self._line))


def format_value(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def metrics_table(figures: dict, title: str) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        table.add_row(key, format_value(value))
    return table


def print_report(figures: dict, notes: list[str]) -> None:
    """The metrics table, any notes, and the verdict line."""
    stdout.print(metrics_table({k: v for k, v in figures.items()
                                if k != "verdict" and not isinstance(v, dict)}, "metrics"))
    if figures.get("groups"):
        stdout.print(groups_table(figures["groups"]))
    if figures.get("coefficients"):
        stdout.print(coefficients_table(figures["coefficients"]))
    for note in notes:
        stdout.print(f"note: {note}")
    if figures["verdict"] == "ok":
        fit = ("; fit: 90% test coverage in [0.8, 0.97], noise sd >= half the training "
               "residual sd" if "test_coverage_90" in figures else "")
        stdout.print(Text.assemble(("verdict: ok", "green"),
                                   " (R-hat <= 1.01 unless the draws are i.i.d., ESS >= 100 "
                                   f"per chain, no divergences, all values finite{fit})"))
    else:
        stdout.print(f"verdict: WARNING: {figures['verdict']}", style="yellow")


EXACT_TARGETS = {"mean_z_max": 0.2, "var_ratio": (0.8, 1.25)}  # "reaches the exact posterior"


GROUP_COLUMNS = ("sampler", "numbers", "accept_mean", "divergences", "grad_evals_per_sweep",
                 "ess_bulk_min", "dependence")


def groups_table(groups: dict) -> Table:
    """metrics.json `groups`: one row per Gibbs group."""
    table = Table(title="mask groups (dependence: conditional / marginal sd, exact posterior)")
    table.add_column("group")
    for column in GROUP_COLUMNS:
        table.add_column(column, justify="left" if column == "sampler" else "right")
    for name, figures in groups.items():
        table.add_row(name, *(format_value(figures.get(c)) for c in GROUP_COLUMNS))
    return table


def coefficients_table(coefficients: dict) -> Table:
    """metrics.json `coefficients`: one row per sampled PDE coefficient."""
    table = Table(title="sampled coefficients (posterior)")
    table.add_column("coefficient")
    for column in ("mean", "sd", "q05", "q95"):
        table.add_column(column, justify="right")
    for name, figures in coefficients.items():
        table.add_row(name, *(format_value(figures.get(c)) for c in ("mean", "sd", "q05",
                                                                     "q95")))
    return table


def print_wide(table: Table) -> None:
    """Print `table` whole: wider than the terminal, lines run on rather than cells being
    cropped to `…`."""
    from rich.measure import Measurement

    needed = Measurement.get(stdout, stdout.options.update_width(10**5), table).maximum
    width = stdout.width
    stdout.width = max(width, needed)  # print(width=...) would be capped at the console's
    try:
        stdout.print(table, crop=False)
    finally:
        stdout.width = width


def stages_table(stages: dict, wall_s: float) -> Table:
    """Seconds and share of the wall time per stage, in order, then their sum against it."""
    table = Table(title=f"where the {wall_s:.2f} s went (meta.json timings.stages)")
    for column in ("stage", "seconds", "share"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for name, seconds in stages.items():
        table.add_row(name, f"{seconds:.3f}", f"{seconds / wall_s:.1%}")
    total = sum(stages.values())
    table.add_row("sum of stages", f"{total:.3f}", f"{total / wall_s:.1%}")
    return table


def exact_pointer(figures: dict) -> str | None:
    """One line when the run has an exact reference its chain does not reach (mean_z_max
    above 0.2 or a variance ratio outside [0.8, 1.25], the issues' targets); None otherwise."""
    z, low, high = (figures.get(k) for k in ("mean_z_max", "var_ratio_min", "var_ratio_max"))
    if z is None or low is None or high is None:
        return None
    lo, hi = EXACT_TARGETS["var_ratio"]
    if z <= EXACT_TARGETS["mean_z_max"] and lo <= low and high <= hi:
        return None
    return (f"not the exact posterior yet (mean_z_max {z:.2f}, variance ratios {low:.2f} to "
            f"{high:.2f}); NUTS reaches it on the seed's problem: headbayes run "
            f"+experiment=sin_head_nuts (or draw from it directly with sampler=exact)")


def leaf_table_view(table: dict) -> Table:
    view = Table(title=f"{table['sampled_size']} sampled of {table['total_size']} parameters "
                       f"({table['sampled_leaves']} of {table['total_leaves']} leaves)")
    for column in ("path", "shape", "size", "sampled"):
        view.add_column(column, justify="right" if column == "size" else "left")
    for leaf in table["leaves"]:
        state = "frozen"
        if leaf["sampled"]:
            state = f"sampled ({leaf['group']})" if "group" in leaf else "sampled"
        view.add_row(leaf["path"], str(tuple(leaf["shape"])), str(leaf["size"]), state)
    return view


MAX_MESSAGE = 2000  # characters of an error: a file's content quoted in it is cut there


def error(message: str) -> None:
    if len(message) > MAX_MESSAGE:
        message = f"{message[:MAX_MESSAGE]} ... ({len(message) - MAX_MESSAGE} more characters)"
    print(f"headbayes: error: {message}", file=sys.stderr)
