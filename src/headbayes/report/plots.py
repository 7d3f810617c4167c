"""The report's figures (matplotlib, Agg backend): predictive band, calibration, traces; for
classifiers the reliability diagram and, with 2-D inputs, the probability and entropy maps.

The predictive and trace figures are kept for the next report in this process (the jobs of a
sweep): a kept figure redraws only what the data change, the same pixels in half the time
(`tests/test_plots.py`)."""

import threading
from pathlib import Path

import numpy as np
from headbayes.core import store
from headbayes.core.normal import Z_95

__all__ = ["plot_predictive", "plot_observed", "plot_field", "plot_physics", "plot_calibration",
           "plot_traces", "plot_reliability", "plot_class_maps", "plane_grid", "prefetch"]


def prefetch() -> None:
    """Start importing matplotlib with its Agg backend in a thread (another package's modules
    only: no import cycle across threads), so the plots drawn in this process later find it."""
    threading.Thread(target=_pyplot, daemon=True, name="report-imports").start()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    """Save `fig` as PNG at `path` atomically (`store.temporary_beside`: a failed write is exit
    4 naming the path, and leaves no temporary file)."""

    with store.temporary_beside(path) as (f, _):  # zlib level 1: a fifth of the encoding time
        fig.savefig(f, dpi=80, format="png", pil_kwargs={"compress_level": 1})


_KEPT: dict = {}  # figure key -> (figure, axes[, lines]), reused by later reports in this process
MAX_KEPT = 8


def _agg_figure(figsize: tuple):
    """A figure on its own Agg canvas, outside pyplot's registry (nothing to close)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _kept(key: tuple, make):
    """The figure kept under `key`, or `make()` kept there (the latest MAX_KEPT)."""
    if key not in _KEPT:
        while len(_KEPT) >= MAX_KEPT:
            _KEPT.pop(next(iter(_KEPT)))
        _KEPT[key] = make()
    return _KEPT[key]


MAX_POINTS = 2000  # data points drawn per plot; more are thinned evenly (any data size plots)


def _thinned(n: int) -> np.ndarray:
    """Indices of at most MAX_POINTS of `n` rows, evenly spaced."""
    return np.arange(n) if n <= MAX_POINTS else np.linspace(0, n - 1, MAX_POINTS).astype(int)


def plot_predictive(path: Path, data, summary: dict, exact=None) -> None:
    """Data, noiseless truth, posterior mean and 90% band on the eval grid (1-D inputs); with
    an exact reference, its mean and band as dotted lines. The axes are kept for the next
    report in this process (`_emptied`)."""
    x = data.x_eval[:, 0]
    fig, ax = _kept(("predictive",), _predictive_axes)
    _emptied(ax)
    ax.fill_between(x, summary["lo"][:, 0], summary["hi"][:, 0], alpha=0.3, label="90% band")
    if data.f_eval is not None:
        ax.plot(x, data.f_eval[:, 0], "k--", label="truth")
    if data.gap is not None:
        ax.axvspan(*data.gap, color="0.9", label="gap (no data)")
    ax.plot(x, summary["mean"][:, 0], label="posterior mean")
    if exact is not None:

        mean, half = exact.f_mean[:, 0], Z_95 * exact.f_sd[:, 0]
        ax.plot(x, mean, "C3:", label="exact mean")
        ax.plot(x, mean - half, "C3:", lw=0.8, label="exact 90% band")
        ax.plot(x, mean + half, "C3:", lw=0.8)
    shown = _thinned(len(data.x_train))
    ax.plot(data.x_train[shown, 0], data.y_train[shown, 0], "o", ms=3, label="data")
    ax.legend()
    _save(fig, path)


def _predictive_axes() -> tuple:
    fig = _agg_figure((6, 4))
    ax = fig.subplots()
    fig.subplots_adjust(left=0.12, right=0.97, top=0.97, bottom=0.12)
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    return fig, ax


def _emptied(ax) -> None:
    """`ax` without its data, legend, data limits or place in the colour cycle, as new; its
    axis objects and their ticks stay, which are most of the cost of a fresh axes."""
    from matplotlib.transforms import Bbox

    for artist in [*ax.lines, *ax.collections, *ax.patches]:
        artist.remove()
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    ax.set_prop_cycle(None)
    ax.dataLim.set(Bbox.null())
    ax.ignore_existing_data_limits = True
    ax.autoscale(True)


def plot_observed(path: Path, data, f_test) -> None:
    """Held-out targets against the posterior mean, with 90% function-band error bars."""
    plt = _pyplot()
    shown = _thinned(f_test.shape[2])
    pooled = f_test.reshape((-1,) + f_test.shape[2:])[:, shown, 0]
    mean = pooled.mean(axis=0)
    lo, hi = np.quantile(pooled, [0.05, 0.95], axis=0)
    y = data.y_test[shown, 0]
    fig, ax = plt.subplots(figsize=(5, 5), layout="constrained")
    ax.errorbar(y, mean, yerr=[mean - lo, hi - mean], fmt="o", ms=3, lw=0.8, alpha=0.7)
    edges = [min(y.min(), lo.min()), max(y.max(), hi.max())]
    ax.plot(edges, edges, "k--", lw=0.8)
    ax.set_xlabel("observed (test)")
    ax.set_ylabel("predicted: posterior mean and 90% band")
    _save(fig, path)
    plt.close(fig)


def plot_calibration(path: Path, calibration: dict) -> None:
    """Observed coverage of central predictive intervals against their nominal level."""
    plt = _pyplot()
    levels = np.array(list(calibration))
    fig, ax = plt.subplots(figsize=(4, 4), layout="constrained")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="perfect calibration")
    ax.plot(levels, list(calibration.values()), "o-", label="test data")
    ax.set_xlabel("nominal coverage")
    ax.set_ylabel("observed coverage")
    ax.legend()
    _save(fig, path)
    plt.close(fig)


def plot_reliability(path: Path, table: dict, map_table: dict | None = None) -> None:
    """Accuracy against confidence per confidence bin (`headbayes.report.classify.reliability`),
    for the posterior predictive and, when given, the MAP network."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4, 4), layout="constrained")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="perfect calibration")
    ax.plot(table["confidence"], table["accuracy"], "o-", label="posterior predictive")
    if map_table is not None:
        ax.plot(map_table["confidence"], map_table["accuracy"], "s:", label="MAP network")
    ax.set_xlabel("confidence (max probability)")
    ax.set_ylabel("accuracy")
    ax.legend()
    _save(fig, path)
    plt.close(fig)


GRID = 60


def plane_grid(points: np.ndarray, margin: float = 0.5) -> np.ndarray:
    """A GRID × GRID grid (rows x fastest) over the box of 2-D `points`, widened by `margin`
    times its size on each side, float32."""
    low, high = points.min(axis=0), points.max(axis=0)
    pad = margin * np.maximum(high - low, 1e-6)
    u, v = np.meshgrid(np.linspace(low[0] - pad[0], high[0] + pad[0], GRID),
                       np.linspace(low[1] - pad[1], high[1] + pad[1], GRID))
    return np.stack([u.ravel(), v.ravel()], axis=1).astype(np.float32)


def plot_class_maps(path: Path, data, grid: np.ndarray, p_grid: np.ndarray,
                    grid_entropy: np.ndarray) -> None:
    """2-D inputs: the predictive probability of the last class and the predictive entropy on
    a `plane_grid`, with the training points coloured by class."""
    plt = _pyplot()
    u = grid[:, 0].reshape(GRID, GRID)
    v = grid[:, 1].reshape(GRID, GRID)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for ax, values, title in ((axes[0], p_grid[:, -1], f"p(class {data.classes[-1]})"),
                              (axes[1], grid_entropy, "predictive entropy")):
        image = ax.contourf(u, v, values.reshape(GRID, GRID), levels=20, cmap="viridis")
        fig.colorbar(image, ax=ax)
        shown = _thinned(len(data.x_train))
        ax.scatter(data.x_train[shown, 0], data.x_train[shown, 1], c=data.y_train[shown, 0], s=8,
                   cmap="coolwarm", edgecolors="k", linewidths=0.3)
        ax.set_title(title)
        ax.set_xlabel(data.inputs[0])
        ax.set_ylabel(data.inputs[1])
    _save(fig, path)
    plt.close(fig)


def plot_physics(path: Path, x: np.ndarray, mean: np.ndarray, sd: np.ndarray,
                 truth: np.ndarray, sensors: np.ndarray, residual: np.ndarray,
                 coefficients: dict, true_coefficients: dict) -> None:
    """A 1-D physics run: u's posterior mean ± 2 sd against the truth with the sensors of u;
    the residual L[u] − f (5%, 50% and 95% over the draws); a histogram of each sampled
    coefficient with its true value. `sensors` is (n, 2): x and the observed u."""
    plt = _pyplot()
    panels = 2 + len(coefficients)
    fig, axes = plt.subplots(1, panels, figsize=(4.5 * panels, 3.8), layout="constrained")
    ax = axes[0]
    ax.fill_between(x, mean - 2 * sd, mean + 2 * sd, alpha=0.3, label="mean ± 2 sd")
    ax.plot(x, truth, "k--", label="truth")
    ax.plot(x, mean, label="posterior mean")
    ax.plot(sensors[:, 0], sensors[:, 1], "o", ms=4, label="u sensors")
    ax.set_xlabel("x")
    ax.set_title("u")
    ax.legend(fontsize=7)
    ax = axes[1]
    lo, mid, hi = np.quantile(residual, [0.05, 0.5, 0.95], axis=0)
    ax.fill_between(x, lo, hi, alpha=0.3, label="5%-95% of the draws")
    ax.plot(x, mid, label="median")
    ax.axhline(0, color="k", lw=0.7)
    ax.set_xlabel("x")
    ax.set_title("residual L[u] - f")
    ax.legend(fontsize=7)
    for ax, (name, draws) in zip(axes[2:], coefficients.items()):
        ax.hist(draws, bins=40, alpha=0.7)
        if name in true_coefficients:
            ax.axvline(true_coefficients[name], color="k", ls="--", label="true value")
            ax.legend(fontsize=7)
        ax.set_title(f"posterior of {name}")
    _save(fig, path)
    plt.close(fig)


def plot_field(path: Path, data, summary: dict) -> None:
    """2-D inputs on a square eval grid (a pde's): the posterior mean, its error against the
    truth (when known) and the 90% band's width, each as a map, with the u sensors marked."""
    plt = _pyplot()
    n = int(round(np.sqrt(len(data.x_eval))))
    u = data.x_eval[:, 0].reshape(n, n)
    v = data.x_eval[:, 1].reshape(n, n)
    panels = [(summary["mean"][:, 0], "posterior mean")]
    if data.f_eval is not None:
        panels.append((np.abs(summary["mean"][:, 0] - data.f_eval[:, 0]), "|mean - truth|"))
    panels.append(((summary["hi"] - summary["lo"])[:, 0], "90% band width"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4),
                             layout="constrained", squeeze=False)
    for ax, (values, title) in zip(axes[0], panels):
        image = ax.contourf(u, v, values.reshape(n, n), levels=20, cmap="viridis")
        fig.colorbar(image, ax=ax)
        shown = _thinned(len(data.x_train))
        ax.plot(data.x_train[shown, 0], data.x_train[shown, 1], "k.", ms=2)
        ax.set_title(title)
        ax.set_xlabel(data.inputs[0])
        ax.set_ylabel(data.inputs[1])
    _save(fig, path)
    plt.close(fig)


def plot_traces(path: Path, chain: dict, max_numbers: int = 6, max_chains: int = 8) -> None:
    """Traces of the first sampled numbers of each sampled leaf, one line for each of the first
    `max_chains` chains, at most MAX_POINTS evenly spaced draws each. The figure is kept for
    the next report in this process with as many panels and lines (a sweep's jobs): only the
    lines' data, the labels and the limits change, which halves its cost (the same pixels)."""
    series = []
    for leaf, draws in chain.items():
        flat = draws.reshape(draws.shape[:2] + (-1,))
        for i in range(min(flat.shape[2], max(1, max_numbers // len(chain)))):
            series.append((f"{leaf}[{i}]", flat[:, :, i]))
    series = series[:max_numbers]
    lines_per_panel = tuple(min(len(values), max_chains) for _, values in series)
    fig, axes, lines = _kept(("traces", lines_per_panel), lambda: _trace_figure(lines_per_panel))
    shown = _thinned(series[0][1].shape[1])  # at most MAX_POINTS draws: a fixed cost
    for ax, panel, (name, values) in zip(axes, lines, series):
        for line, chain_values in zip(panel, values):
            line.set_data(shown, chain_values[shown])
        ax.set_ylabel(name, fontsize=7)
        ax.relim()
        ax.autoscale_view()
    _save(fig, path)


def _trace_figure(lines_per_panel: tuple) -> tuple:
    """(figure, its axes, their lines without data): one panel per entry of `lines_per_panel`."""
    from matplotlib.ticker import MaxNLocator

    fig = _agg_figure((6, 1.4 * len(lines_per_panel)))
    axes = fig.subplots(len(lines_per_panel), 1, squeeze=False)[:, 0]
    fig.subplots_adjust(left=0.2, right=0.97, top=0.98, bottom=0.1, hspace=0.15)
    lines = [[ax.plot([], [], lw=0.7)[0] for _ in range(count)]
             for ax, count in zip(axes, lines_per_panel)]
    for ax in axes:
        ax.yaxis.set_major_locator(MaxNLocator(3))  # readable on a short axis; fewer ticks to draw
    for ax in axes[:-1]:  # the same draws on every panel: x is read off the bottom one
        ax.xaxis.set_visible(False)  # no ticks, and the axis is not drawn at all
    axes[-1].set_xlabel("kept draw")
    return fig, axes, lines
