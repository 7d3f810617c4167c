"""The Hydra task behind `headbayes run`: one job = one run directory.

Errors a user can act on end the job with their exit code (2, 3, 4) and a one-line message;
in a multirun the job is recorded as failed in `status.json` and the sweep goes on.
"""

import logging
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from headbayes.app import console
from headbayes.app.session import holds_this_run, owned, run_and_report
from headbayes.config.composition import checked, with_chosen_model_keys
from headbayes.config.typed import register_schema
from headbayes.core.errors import HeadbayesError, Interrupted, SignalStop
from headbayes.core.rundir import RunFiles

__all__ = ["main", "run_and_report", "holds_this_run", "SweepStatus", "JOB_STATE"]

register_schema()

# Set by the task; read by cli.py (same process) to tell config errors from job failures.
JOB_STATE = {"started": False, "failed": []}


def _run(cfg: DictConfig, run_dir: Path) -> None:
    """Under the run directory's lock: refuse another run's directory, write the job's
    .hydra/ files (Hydra's own writing is off: `hydra.output_subdir: null`), sample, report."""
    from headbayes.core.timing import end_job

    cfg = with_chosen_model_keys(cfg, list(HydraConfig.get().overrides.task))
    try:
        with owned(run_dir) as files:
            if not files.holds_chunks():
                _write_hydra_files(files, cfg)
            run_config = checked(cfg)  # typed and validated, once
            sweep_dir = (Path(HydraConfig.get().sweep.dir)
                         if HydraConfig.get().mode == RunMode.MULTIRUN else None)
            run_and_report(run_config, run_dir, resume=holds_this_run(run_config, run_dir),
                           sweep_dir=sweep_dir)
    finally:  # the next job of a sweep in this process times itself from here
        end_job()


def _write_hydra_files(files: RunFiles, cfg: DictConfig) -> None:
    """.hydra/config.yaml, hydra.yaml and overrides.yaml, as Hydra would write them."""
    from omegaconf import OmegaConf

    hydra_cfg = HydraConfig.get()
    texts = {files.HYDRA_CONFIG: OmegaConf.to_yaml(cfg),
             files.HYDRA_SETTINGS: OmegaConf.to_yaml(OmegaConf.create({"hydra": hydra_cfg})),
             files.HYDRA_OVERRIDES: OmegaConf.to_yaml(hydra_cfg.overrides.task)}
    for name, text in texts.items():
        files.write_bytes(name, text.encode())


class SweepStatus(Callback):
    """After a sweep, in the launching process: read every job's status.json, so the sweep's
    exit code reports failed jobs whichever launcher ran them (joblib and submitit run jobs in
    other processes, where JOB_STATE is not seen), and print one line per failed job."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        jobs = sorted((d for d in sweep_dir.iterdir()
                       if not d.is_symlink() and RunFiles(d).is_job()), key=lambda d: d.name)
        console.stdout.print(f"sweep directory: {sweep_dir} ({len(jobs)} jobs); one table of "
                             f"them: headbayes summarize {sweep_dir}")
        recorded = bool(JOB_STATE["failed"])  # the basic launcher ran them in this process
        for job in jobs:  # other launchers' jobs printed to their own logs: one line each here
            status = RunFiles(job).status()
            if status.get("status") == "failed":
                if not recorded:
                    JOB_STATE["failed"].append((job.name, status["exit_code"]))
                console.error(f"job {job.name} failed (exit {status['exit_code']}): "
                              f"{status.get('message', '')}")


@hydra.main(version_base="1.3", config_path="pkg://headbayes.configs", config_name="config")
def main(cfg: DictConfig) -> None:
    JOB_STATE["started"] = True
    for noisy in ("jax", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        _run(cfg, run_dir)  # status.json is written by `session.owned`
    except SignalStop as e:  # a stop outside the run's life: the whole command stops
        console.error(str(e))
        raise SystemExit(e.exit_code) from None
    except Exception as e:
        known = isinstance(e, HeadbayesError)
        code = e.exit_code if known else 1
        message = str(e) if known else f"{type(e).__name__}: {e}"
        if not known:
            traceback.print_exc()
        console.error(message)
        if not multirun or isinstance(e, Interrupted):  # a signal stops the whole sweep
            raise SystemExit(code) from None
        JOB_STATE["failed"].append((hydra_cfg.job.num, code))
