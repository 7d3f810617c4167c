"""Body modes: what happens to the leaves the mask leaves out (the body), one registry entry
each (`body.mode`), with the capabilities every layer asks about instead of comparing names:

- `learned`: the body leaves its initial values (params_initial.npz keeps them for the report);
- `map`: the body is trained to the MAP before sampling, so params.npz holds the whole network
  at the MAP (the report's MAP figures) and the training cannot use a scale learned after it;
- `moves`: the body changes during the run's first steps, so the frozen prefix cannot be
  cached, the chain is resumable only once it is frozen, and only a stepping sampler that runs
  alone can move with it.

The training itself is in `job.bodies`, chosen by these capabilities. The config's keys are
`core.schema.BodyConfig` for every mode.
"""

from headbayes.core.registry import Registry
from headbayes.core.schema import BodyConfig

__all__ = ["BODIES", "body_entry", "modes_with", "modes_without"]

BODIES = Registry("body", key="mode")


def body_entry(cfg):
    """The registry entry of the run's `body.mode`."""
    return BODIES[cfg.body.mode]


def modes_with(cap: str) -> list[str]:
    return [name for name in BODIES.names() if cap in BODIES[name].caps]


def modes_without(cap: str) -> list[str]:
    return [name for name in BODIES.names() if cap not in BODIES[name].caps]


@BODIES.register("frozen", BodyConfig)
def frozen(options: BodyConfig) -> None:
    """The body stays at its initialisation (the seed's Pattern A)."""


@BODIES.register("pretrained", BodyConfig, caps={"learned", "map"})
def pretrained(options: BodyConfig) -> None:
    """The network trained to the MAP (`job.pretrain`), then the masked leaves sampled."""


@BODIES.register("joint", BodyConfig, caps={"learned", "moves"})
def joint(options: BodyConfig) -> None:
    """Body and sampled leaves trained together (`job.joint`), then the body frozen."""
