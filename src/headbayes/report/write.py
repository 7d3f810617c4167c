"""The report stage: rebuild everything from a run directory alone -> metrics.json and plots.

The predictive runs through the model itself (`headbayes.engine.predictive`, JAX): frozen stages
before the first sampled one once, the rest for batches of draws.
"""

from pathlib import Path

import numpy as np

from headbayes.config.budget import check_report_memory
from headbayes.config.saved import load_config
from headbayes.core.errors import RunDirError
from headbayes.core.rundir import RunFiles
from headbayes.core.timing import Stages
from headbayes.datasets import make_dataset
from headbayes.engine.predictive import function_draws
from headbayes.engine.programs import enable_compile_cache
from headbayes.models import check_draws, checked_arrays
from headbayes.models.bodies import body_entry
from headbayes.posterior.operators import value_rows
from headbayes.posterior.physics import coefficient_draws, is_physics
from headbayes.posterior.position import chain_leaves, model_draws
from headbayes.report import classify, plots
from headbayes.report.figures import METRIC_KEYS, ReportContext, compute_figures, json_figures

__all__ = ["compute_report", "write_report", "METRIC_KEYS"]


def compute_report(run_dir: Path, job=None, code: tuple = ()) -> tuple[dict, dict]:
    """(metrics, extras) recomputed from the files; extras hold arrays for the plots and notes.
    `job`: the `job.pipeline.JobResult` this process just ran in `run_dir`: its dataset (the
    one the files describe) is reused and its model, the config's own, is not checked again;
    None reads everything from the files. `code`: folders a saved `model._target_` may be
    imported from (`config.saved.load_config`)."""
    files = RunFiles(run_dir)
    cfg = load_config(files, learned=True, code=code, own=job is not None)
    enable_compile_cache()  # after load_config: never a cache inside the run directory read
    data = job.data if job is not None else None
    params = checked_arrays(files.read_params(), cfg, files.path(files.PARAMS))
    chain, info = files.chain(cfg.sampler, chain_leaves(cfg))
    check_draws(model_draws(chain), params, files.root / "chain")
    initial = (checked_arrays(files.read_params(initial=True), cfg,
                              files.path(files.PARAMS_INITIAL))
               if files.has(files.PARAMS_INITIAL) else None)
    frozen_end = (checked_arrays(files.read_npz(files.FROZEN_END), cfg,
                                 files.path(files.FROZEN_END), some=True)
                  if files.has(files.FROZEN_END) else None)
    if data is None:  # a job this process ran checked it before sampling (job.pipeline)
        data = make_dataset(cfg.data)
        check_report_memory(cfg, data, list(model_draws(chain)))
    ctx = ReportContext(cfg, data, params, chain, info, initial, frozen_end)
    if ctx.data.ignored:
        ctx.notes.append(f"columns holding text, not used as inputs: "
                         f"{', '.join(ctx.data.ignored)}")
    try:
        figures = compute_figures(ctx)
    except KeyError as e:
        raise RunDirError(f"{files.path(files.PARAMS)} lacks leaf {e}") from None
    physics = is_physics(cfg.likelihood)
    shown = value_rows(ctx.data) if physics else ctx.data  # the sensors of u, not of f
    extras = {"data": shown, "chain": chain, "field": physics, "exact": ctx.exact,
              "notes": ctx.notes,
              "f_test": ctx.f_test, "classifier": ctx.classifier,
              "calibration": None if ctx.heldout is None else ctx.heldout[1]}
    if ctx.classifier:
        extras.update(_class_extras(ctx))
    else:
        extras["summary"] = ctx.summary
    if physics and ctx.data.x_eval.shape[1] == 1:
        extras["physics"] = _physics_extras(ctx, shown)
    return figures, extras


def _physics_extras(ctx: ReportContext, shown) -> tuple:
    """plot_physics's arguments but the path: u's mean and sd on the eval grid, its truth, the
    sensors of u, the residual draws, the sampled coefficients and their true values."""
    mean, sd = ctx.eval_mean_sd
    coefficients = {k: v.reshape(-1) for k, v in
                    coefficient_draws(ctx.chain, ctx.cfg.likelihood).items()}
    truths = {k: float(v) for k, v in getattr(ctx.cfg.data, "coefficients", {}).items()}
    return (ctx.data.x_eval[:, 0], mean[:, 0], sd[:, 0],
            ctx.data.f_eval[:, 0], np.stack([shown.x_train[:, 0], shown.y_train[:, 0]], 1),
            ctx.pde_residuals, coefficients, truths)


def _class_extras(ctx: ReportContext) -> dict:
    """What the classifier plots need: reliability tables and, for 2-D inputs, the maps."""
    extras = {}
    if "test" in ctx.class_predictive:
        labels = ctx.data.y_test[:, 0].astype(int)
        extras["reliability"] = classify.reliability(ctx.class_predictive["test"][0], labels)
        if "map" in body_entry(ctx.cfg).caps:
            extras["map_reliability"] = classify.reliability(ctx.map_predictive[0], labels)
    if ctx.data.x_train.shape[1] == 2:

        grid = plots.plane_grid(np.concatenate([ctx.data.x_train, ctx.data.x_test]))
        logits = function_draws(ctx.cfg, ctx.params, ctx.model_chain, grid)
        p_grid, _ = classify.predictive(logits, ctx.family)
        extras["maps"] = (grid, p_grid, classify.entropy(p_grid))
    return extras


def write_report(run_dir: Path, plot: bool = True, stages=None, worker=None,
                 job=None, code: tuple = ()) -> tuple[dict, list]:
    """Recompute metrics, write metrics.json (and the plots); return (metrics, notes). With
    `stages` (`headbayes.core.timing.Stages`), their time goes to the laps `report` and `plots`;
    with a `headbayes.report.plotworker.PlotWorker`, it draws the plots if it can; `job`
    and `code` as in `compute_report`."""

    stages = Stages() if stages is None else stages
    files = RunFiles.existing(run_dir)
    figures, extras = compute_report(run_dir, job, code)
    files.write_json(files.METRICS, json_figures(figures))
    stages.lap("report")
    calls = _plot_calls(files, extras) if plot else []
    if calls and (worker is None or not worker.draw(calls)):
        for name, args in calls:
            getattr(plots, name)(*args)
    stages.lap("plots")
    return figures, extras["notes"]


def _plot_calls(files: RunFiles, extras: dict) -> list[tuple[str, tuple]]:
    """(function of `headbayes.report.plots`, arguments) of the run's figures: predictive.png
    (class maps; a 2-D physics run's fields), calibration.png (reliability), physics.png (a 1-D
    physics run) and trace.png."""
    calls = []
    if extras["classifier"]:
        if "maps" in extras:
            calls.append(("plot_class_maps", (files.path(files.PREDICTIVE_PLOT), extras["data"],
                                              *extras["maps"])))
        if "reliability" in extras:
            calls.append(("plot_reliability", (files.path(files.CALIBRATION_PLOT),
                                               extras["reliability"],
                                               extras.get("map_reliability"))))
    else:
        data = extras["data"]
        if data.x_train.shape[1] == 1:
            calls.append(("plot_predictive", (files.path(files.PREDICTIVE_PLOT), data,
                                              extras["summary"], extras["exact"])))
        elif extras["field"]:
            calls.append(("plot_field", (files.path(files.PREDICTIVE_PLOT), data,
                                         extras["summary"])))
        else:
            calls.append(("plot_observed", (files.path(files.PREDICTIVE_PLOT), data,
                                            extras["f_test"])))
        if extras["f_test"] is not None:
            calls.append(("plot_calibration", (files.path(files.CALIBRATION_PLOT),
                                               extras["calibration"])))
    if extras.get("physics") is not None:
        calls.append(("plot_physics", (files.path(files.PHYSICS_PLOT), *extras["physics"])))
    calls.append(("plot_traces", (files.path(files.TRACE_PLOT), extras["chain"])))
    return calls
