"""Body modes: what happens to the leaves the mask leaves out (the body), one registry entry each.

Capabilities the rest of the code asks about instead of comparing names:
- `learned`: the body leaves its initial values (params_initial.npz keeps them for the report);
- `map`: params.npz holds the whole network trained to the MAP (the report's MAP figures);
- `moves`: the body changes during the run's first steps, so the frozen prefix cannot be
  cached and the chain is resumable only once it is frozen.
Hooks (extras): `before_sampling(cfg, params, static, data) -> (params, record)` trains the
body before the sampler is set up; `during_sampling(cfg, loop, static, params, mask, slots,
check, counts, progress) -> (loop, params, compile seconds)` trains it with the sampler. The
config's keys are `core.schema.BodyConfig` for every mode.
"""

import time

from headbayes.core.registry import Registry
from headbayes.core.schema import BodyConfig
from headbayes.datasets import make_dataset
from headbayes.job.joint import train_jointly
from headbayes.job.pretrain import pretrain

__all__ = ["BODIES", "body_entry"]

BODIES = Registry("body")


def body_entry(cfg):
    """The registry entry of the run's `body.mode`."""
    return BODIES[cfg.body.mode]


@BODIES.register("frozen", BodyConfig)
def frozen(options: BodyConfig) -> None:
    """The body stays at its initialisation (the seed's Pattern A)."""


def _pretrained(cfg, params, static, data) -> tuple:
    """Train every leaf to the MAP on the run's data (or `body.data`, another task)."""
    start = time.perf_counter()
    task = make_dataset(cfg.body.data) if cfg.body.data else data
    params, record = pretrain(cfg, params, static, task)
    record["seconds"] = time.perf_counter() - start
    return params, record


@BODIES.register("pretrained", BodyConfig, caps={"learned", "map"}, before_sampling=_pretrained)
def pretrained(options: BodyConfig) -> None:
    """The network trained to the MAP (`job.pretrain`), then the masked leaves sampled."""


@BODIES.register("joint", BodyConfig, caps={"learned", "moves"}, during_sampling=train_jointly)
def joint(options: BodyConfig) -> None:
    """Body and sampled leaves trained together (`job.joint`), then the body frozen."""
