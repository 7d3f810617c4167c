"""The sweeper behind `headbayes run -m`: `hydra/sweeper: checked`, the class
`hydra_plugins.headbayes_sweeper.CheckedSweeper` (Hydra loads plugins from that namespace only).

Hydra's basic sweeper composes every job's config once before launching any, to catch a bad
value early, and the launcher composes it again to run the job. When `cli.preflight` has
already checked every job's values (discrete sweeps of plain keys: no config group, no added
key, no Hydra key, no glob or range), that first composition repeats its check, so it is
skipped and each job is composed once (about 0.08 s a job on a CPU). Otherwise it is Hydra's
basic sweeper unchanged.
"""

__all__ = ["PREFLIGHT"]

PREFLIGHT = {"checked_every_job": False}  # set by `cli.preflight` in this process
