"""The Hydra task behind `headbayes run`: one job = one run directory.

Errors a user can act on end the job with their exit code (2, 3, 4) and a one-line message;
in a multirun the job is recorded as failed in `status.json` and the sweep goes on.
"""

import logging
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from headbayes import console, store
from headbayes.config import RunConfig, register_schema
from headbayes.errors import ConfigError, HeadbayesError, Interrupted

__all__ = ["main", "run_and_report", "JOB_STATE"]

register_schema()

# Set by the task; read by cli.py (same process) to tell config errors from job failures.
JOB_STATE = {"started": False, "failed": []}


def to_run_config(cfg: DictConfig) -> RunConfig:
    try:
        return OmegaConf.to_object(cfg)
    except (OmegaConfBaseException, ValueError) as e:
        raise ConfigError(str(e).splitlines()[0]) from None


def _run(cfg: DictConfig, run_dir: Path) -> None:
    run_and_report(to_run_config(cfg), run_dir)


def run_and_report(run_config: RunConfig, run_dir: Path, resume: bool = False) -> None:
    """Sample (or resume), then report and print the metrics table."""
    from headbayes.pipeline import run_job
    from headbayes.report import write_report

    with console.sampling_progress() as progress:
        meta = run_job(run_config, run_dir, progress, resume=resume)
    figures, notes = write_report(run_dir)
    console.print_report(figures, notes)
    timings = meta["timings"]
    console.stdout.print(f"compile {timings['compile_s']:.2f} s, sampling "
                         f"{timings['sampling_s']:.2f} s; run directory: {run_dir}")


@hydra.main(version_base="1.3", config_path="pkg://headbayes.configs", config_name="config")
def main(cfg: DictConfig) -> None:
    JOB_STATE["started"] = True
    for noisy in ("jax", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        _run(cfg, run_dir)
        store.write_json(run_dir / "status.json", {"status": "ok", "exit_code": 0})
    except Exception as e:  # every failure is recorded before it is reported
        known = isinstance(e, HeadbayesError)
        code = e.exit_code if known else 1
        message = str(e) if known else f"{type(e).__name__}: {e}"
        store.write_json(run_dir / "status.json",
                         {"status": "failed", "exit_code": code, "message": message})
        if not known:
            traceback.print_exc()
        console.error(message)
        if not multirun or isinstance(e, Interrupted):  # a signal stops the whole sweep
            raise SystemExit(code) from None
        JOB_STATE["failed"].append((hydra_cfg.job.num, code))
