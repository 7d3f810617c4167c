"""The body's training, chosen by its mode's capabilities (`models.bodies`):

- `before_sampling(cfg)`: for a body trained to the MAP (`map`), `(cfg, params, static, data)
  -> (params, record)` trains it before the sampler is set up; else None;
- `during_sampling(cfg)`: for a body that moves (`moves`), `(cfg, loop, static, params, mask,
  slots, check, counts, progress) -> (loop, params, compile seconds)` trains it with the
  sampler; else None.
"""

import time

from headbayes.datasets import make_dataset
from headbayes.job.joint import train_jointly
from headbayes.job.pretrain import pretrain
from headbayes.models.bodies import body_entry

__all__ = ["before_sampling", "during_sampling"]


def _pretrained(cfg, params, static, data) -> tuple:
    """Train every leaf to the MAP on the run's data (or `body.data`, another task)."""
    start = time.perf_counter()
    task = make_dataset(cfg.body.data) if cfg.body.data else data
    params, record = pretrain(cfg, params, static, task)
    record["seconds"] = time.perf_counter() - start
    return params, record


def before_sampling(cfg):
    return _pretrained if "map" in body_entry(cfg).caps else None


def during_sampling(cfg):
    return train_jointly if "moves" in body_entry(cfg).caps else None
