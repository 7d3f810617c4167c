"""Hydra plugin: the sweeper behind `headbayes run -m` (`hydra/sweeper: checked` in headbayes'
config; other Hydra apps are left alone). Hydra loads plugins from this namespace only.

Hydra's basic sweeper composes every job's config once before launching any, to catch a bad
value early, and the launcher composes it again to run the job. When `headbayes.app.cli.preflight`
has already checked every job's values (discrete sweeps of plain keys: no config group, no
added key, no Hydra key, no glob or range), that first composition repeats its check, so it is
skipped and each job is composed once (about 0.08 s a job on a CPU). Otherwise it is Hydra's
basic sweeper unchanged.
"""

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

__all__ = ["CheckedSweeper"]


class CheckedSweeper(BasicSweeper):
    def validate_batch_is_legal(self, batch) -> None:
        # headbayes' own sweeper: headbayes is there
        from headbayes.config.composition import PREFLIGHT

        if not PREFLIGHT["checked_every_job"]:
            super().validate_batch_is_legal(batch)
