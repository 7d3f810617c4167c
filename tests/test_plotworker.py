"""The plot worker draws, to the byte, what this process draws; what it cannot do is left to this
process, and a job without plots stops it."""

import numpy as np
import pytest

from headbayes.report import plots

from headbayes.report import plotworker
from test_plots import predictive_case, trace_case


def test_the_worker_draws_what_this_process_draws(tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "_KEPT", {})
    data, summary, exact = predictive_case(2, True, True, True, 0)
    chain = trace_case(1, 4, 0)
    worker = plotworker.start()
    assert worker.draw([("plot_predictive", (tmp_path / "w_predictive.png", data, summary, exact)),
                        ("plot_traces", (tmp_path / "w_trace.png", chain))])
    worker.close()
    plots.plot_predictive(tmp_path / "predictive.png", data, summary, exact)
    plots.plot_traces(tmp_path / "trace.png", chain)
    for name in ("predictive.png", "trace.png"):
        assert (tmp_path / f"w_{name}").read_bytes() == (tmp_path / name).read_bytes()


def test_arguments_travel_as_arrays_and_outlines():
    value = [None, 1.5, "a", (np.float32(2), np.arange(3)), {"k": np.ones((2, 2))},
             np.int64(7)]
    arrays = {}
    back = plotworker._unpack(plotworker._pack(value, arrays), arrays)
    assert back[:3] == [None, 1.5, "a"]
    np.testing.assert_array_equal(back[3][1], np.arange(3))
    np.testing.assert_array_equal(back[4]["k"], np.ones((2, 2)))
    assert back[5] == 7
    with pytest.raises(TypeError):
        plotworker._pack({"x": object()}, {})


def test_what_the_worker_cannot_do_is_left_to_this_process(tmp_path):
    chain = trace_case(1, 2, 0)
    gone = plotworker.start()
    gone.close()
    assert not gone.draw([("plot_traces", (tmp_path / "t.png", chain))])
    unsendable = plotworker.start()
    assert not unsendable.draw([("plot_traces", (tmp_path / "t.png", {"x": object()}))])
    unsendable.close()
    (tmp_path / "file").write_text("")
    failing = plotworker.start()  # a file where the directory should be: the worker's plot raises
    assert not failing.draw([("plot_traces", (tmp_path / "file" / "t.png", chain))])
    failing.close()
    assert not (tmp_path / "t.png").exists()


def test_a_job_without_plots_stops_the_launched_worker(monkeypatch):
    worker = plotworker.start()
    monkeypatch.setattr(plotworker, "_WAITING", [worker])
    assert plotworker.take(False) is None
    assert worker.process.poll() is not None and plotworker._WAITING == []
    kept = plotworker.start()
    monkeypatch.setattr(plotworker, "_WAITING", [kept])
    assert plotworker.take(True) is kept
    kept.close()
