"""A figure kept from an earlier report (a sweep's previous job) draws the same pixels as a
new one: nothing of the earlier data, labels, limits, legend or colours is left."""

from types import SimpleNamespace

import numpy as np
import pytest

from headbayes.report import plots


def predictive_case(scale: float, truth: bool, gap: bool, exact: bool, seed: int):
    rng = np.random.default_rng(seed)
    x = np.linspace(-1, 1, 101)[:, None]
    mean = np.sin(3 * x) * scale
    data = SimpleNamespace(x_eval=x, f_eval=mean if truth else None,
                           gap=(-0.2, 0.3) if gap else None,
                           x_train=rng.uniform(-1, 1, (32, 1)),
                           y_train=rng.normal(size=(32, 1)) * scale)
    summary = {"mean": mean, "lo": mean - 0.2 * scale, "hi": mean + 0.3 * scale}
    reference = (SimpleNamespace(f_mean=mean + 0.01, f_sd=np.full((101, 1), 0.1 * scale))
                 if exact else None)
    return data, summary, reference


def trace_case(scale: float, chains: int, seed: int):
    rng = np.random.default_rng(seed)
    return {"output_layer.weight": rng.normal(size=(chains, 300, 1, 16)) * scale,
            "output_layer.bias": rng.normal(size=(chains, 300, 1)) + scale}


def drawn(tmp_path, plot, *args) -> bytes:
    path = tmp_path / "figure.png"
    plot(path, *args)
    return path.read_bytes()


@pytest.mark.parametrize("plot,before,after", [
    (plots.plot_predictive, predictive_case(100, True, True, True, 0),
     predictive_case(0.01, False, False, False, 1)),
    (plots.plot_predictive, predictive_case(1, False, False, False, 2),
     predictive_case(3, True, True, True, 3)),
    (plots.plot_traces, (trace_case(100, 4, 0),), (trace_case(0.01, 4, 1),)),
])
def test_a_kept_figure_draws_what_a_new_one_draws(tmp_path, monkeypatch, plot, before, after):
    monkeypatch.setattr(plots, "_KEPT", {})
    new = drawn(tmp_path, plot, *after)
    drawn(tmp_path, plot, *before)  # the kept figure now shows other data
    assert len(plots._KEPT) == 1
    assert drawn(tmp_path, plot, *after) == new


def test_traces_with_another_layout_get_their_own_figure(tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "_KEPT", {})
    four = drawn(tmp_path, plots.plot_traces, trace_case(1, 4, 0))
    two = drawn(tmp_path, plots.plot_traces, trace_case(1, 2, 0))
    assert len(plots._KEPT) == 2 and four != two
    monkeypatch.setattr(plots, "MAX_KEPT", 1)
    drawn(tmp_path, plots.plot_traces, trace_case(1, 3, 0))
    assert len(plots._KEPT) == 1  # the latest MAX_KEPT only


def test_trace_panels_are_scaled_to_their_draws(tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "_KEPT", {})
    chain = trace_case(1, 4, 0)
    drawn(tmp_path, plots.plot_traces, trace_case(1000, 4, 1))  # the kept figure's last data
    drawn(tmp_path, plots.plot_traces, chain)
    (_, axes, _), = plots._KEPT.values()
    weight = chain["output_layer.weight"][:, :, 0, 0]
    low, high = axes[0].get_ylim()
    assert low <= weight.min() and weight.max() <= high
    assert high - low < 1.2 * (weight.max() - weight.min())  # not the earlier data's range
