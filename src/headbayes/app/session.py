"""A run's life in its directory, owned in one place: the lock (taken once), status.json (the one
error policy of the CLI, the Hydra task, `resume` and the Python API), sampling or resuming,
the report, meta.json's timings. No Hydra here: `headbayes resume` and `headbayes.run` start
without importing it; `headbayes.app.hydra_task` is the Hydra task over it.
"""

import contextlib
from pathlib import Path

from headbayes.app import console
from headbayes.config.typed import RunConfig
from headbayes.core.errors import OtherRunInDir, SignalStop, raise_if_signalled
from headbayes.core.rundir import RunFiles
from headbayes.job.signals import on_stop_now

__all__ = ["owned", "holds_this_run", "sample", "report", "run_and_report", "track",
           "plots_prefetch"]

PROFILE = False  # `headbayes run --profile`: print where the job's seconds went


@contextlib.contextmanager
def owned(run_dir: Path):
    """Hold the run directory's lock for the run's life (yields its RunFiles), then write
    status.json: ok, or the failure with its exit code and message (a bug counts as 1). A
    signal's stop is re-raised as the `Interrupted` that says how to continue the run. Another
    run's directory (OtherRunInDir) or a live one (RunInUse) is never written to."""
    files = RunFiles(run_dir)

    def stopped_now(signum: int) -> None:
        files.write_status(SignalStop(signum).in_run(run_dir))

    try:
        with files.lock(), on_stop_now(stopped_now):
            yield files
        raise_if_signalled()  # never record "ok" for a run a signal stopped
    except SignalStop as e:
        stopped = e.in_run(run_dir)
        files.write_status(stopped)
        raise stopped from None
    except OtherRunInDir:
        raise
    except Exception as e:  # every failure is recorded before it is reported
        files.write_status(e)
        raise
    files.write_status()


def holds_this_run(run_config: RunConfig, run_dir: Path) -> bool:
    """True when `run_dir` already holds committed chunks of this same config: a job that SLURM
    requeued after a preemption, or one started again with the same run directory. It then
    resumes. Committed chunks of a different config are never overwritten: OtherRunInDir."""
    from headbayes.config.typed import differences

    files = RunFiles(run_dir)
    if not files.holds_chunks():
        return False
    from headbayes.config.saved import load_config, saved_target

    saved_model = saved_target(files)  # compared before the saved config imports anything
    if saved_model != getattr(run_config.model, "_target_", None):
        raise OtherRunInDir(f"{run_dir} already holds a run of another model "
                            f"({saved_model or 'a built-in one'}). Choose another "
                            f"hydra.run.dir")
    saved = load_config(files, own_data=False, own=True)  # the model this run imports itself
    changed = differences(saved, run_config)
    if changed:
        raise OtherRunInDir(f"{run_dir} already holds a run with other settings: "
                            f"{'; '.join(changed)}. Choose another hydra.run.dir")
    return True


def sample(run_config: RunConfig, run_dir: Path, progress, resume: bool = False,
           on_sampling=None):
    """Sample (or resume) into `run_dir` (`job.pipeline.run_job`); write meta.json as soon as
    the chains are on disk, so a report that fails loses nothing. A run that had finished
    keeps its meta.json. Returns the `JobResult`."""
    from headbayes.core.timing import compile_seconds
    from headbayes.job.pipeline import run_job

    compiled_before = compile_seconds()
    job = run_job(run_config, run_dir, progress, resume=resume, on_sampling=on_sampling)
    job.meta["timings"]["jax_compile_s"] = compile_seconds() - compiled_before
    if not job.finished_before:
        RunFiles(run_dir).write_json(RunFiles.META, job.meta)
    return job


def report(run_config: RunConfig, run_dir: Path, job, worker=None) -> tuple[dict, list]:
    """The report of the job just run (on its dataset and its own model), with its laps added
    to meta.json's timings (a run that had finished keeps its meta.json): (metrics, notes)."""
    from headbayes.core.timing import Stages, compile_seconds, job_seconds
    from headbayes.report.write import write_report

    stages = Stages(job.meta["timings"].get("stages"))
    compiled_before = compile_seconds()
    figures, notes = write_report(run_dir, plot=run_config.report.plots, stages=stages,
                                  worker=worker, job=job)
    job.meta["timings"]["jax_compile_s"] = (job.meta["timings"].get("jax_compile_s", 0.0)
                                            + compile_seconds() - compiled_before)
    if not job.finished_before:
        job.meta["timings"].update(stages=stages.seconds, wall_s=job_seconds())
        RunFiles(run_dir).write_json(RunFiles.META, job.meta)
    return figures, notes


def run_and_report(run_config: RunConfig, run_dir: Path, resume: bool = False,
                   sweep_dir: Path | None = None) -> None:
    """Sample (or resume), then report and print the metrics table; with `+tracking=mlflow`
    log the run (a job of the sweep in `sweep_dir`, if one)."""
    from headbayes.report import plotworker

    worker = plotworker.take(run_config.report.plots)  # `headbayes run` launched it
    try:
        with console.sampling_progress() as progress:
            job = sample(run_config, run_dir, progress, resume,
                         on_sampling=plots_prefetch(run_config, worker))
        # the report's modules are imported after the job: its libraries load meanwhile
        figures, notes = report(run_config, run_dir, job, worker)
    finally:
        if worker is not None:
            worker.close()
    console.print_report(figures, notes)
    timings = job.meta["timings"]
    if PROFILE and "stages" in timings:
        console.stdout.print(console.stages_table(timings["stages"], timings["wall_s"]))
        earlier = timings.get("earlier", [])
        if earlier:
            console.stdout.print(f"stopped processes before this one: {len(earlier)}, "
                                 f"{sum(e['wall_s'] for e in earlier):.2f} s "
                                 f"(meta.json timings.earlier)")
    console.stdout.print(f"compile {timings.get('jax_compile_s', timings['compile_s']):.2f} s, "
                         f"sampling {timings['sampling_s']:.2f} s; run directory: {run_dir}")
    pointer = console.exact_pointer(figures)
    if pointer:
        console.stdout.print(pointer)
    if run_config.tracking.backend == "mlflow":
        track(run_config, run_dir, figures, sweep_dir)


def track(run_config: RunConfig, run_dir: Path, figures: dict,
          sweep_dir: Path | None = None) -> None:
    """Log to MLflow; a tracking server that fails is a warning: the run itself is done."""
    from headbayes.report.tracking import log_run, tracking_uri

    try:
        run_id = log_run(run_config, run_dir, figures, sweep_dir)
    except Exception as e:  # noqa: BLE001 (any client or server error)
        console.error(f"warning: the run is complete but logging it to MLflow at "
                      f"{tracking_uri(run_config.tracking)} failed: {type(e).__name__}: {e}")
        return
    console.stdout.print(f"logged to MLflow ({tracking_uri(run_config.tracking)}): run {run_id}")


def plots_prefetch(run_config: RunConfig, worker=None):
    """What a job starts once sampling does: the plots' imports, where this process draws them
    (no plot worker took them, and `report.plots` is on); else None."""
    if worker is not None or not run_config.report.plots:
        return None
    from headbayes.report import plots

    return plots.prefetch
