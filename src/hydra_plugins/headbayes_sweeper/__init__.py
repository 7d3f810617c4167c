"""headbayes' sweeper plugin (Hydra finds plugins in the `hydra_plugins` namespace only).
What it does and why: `headbayes.sweeper`."""

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

from headbayes.sweeper import PREFLIGHT

__all__ = ["CheckedSweeper"]


class CheckedSweeper(BasicSweeper):
    """Hydra's basic sweeper; it composes each job before the sweep only when `headbayes run`
    has not checked every job's values itself."""

    def validate_batch_is_legal(self, batch) -> None:
        if not PREFLIGHT["checked_every_job"]:
            super().validate_batch_is_legal(batch)
