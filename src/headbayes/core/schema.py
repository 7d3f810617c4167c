"""The run config's fixed sections as dataclasses (no logic): what every layer may name.

Hydra composes `RunConfig` (registered as `base_config` by `headbayes.config.composition`); the
groups whose keys depend on the chosen option (`data`, `model`, `likelihood`, `prior`,
`sampler`) are open dicts there, and the option's own schema (a dataclass of its registry
entry) after `headbayes.config.typed.typed`.
"""

from dataclasses import dataclass, field
from typing import Any, Optional

__all__ = ["GroupConfig", "MaskConfig", "BodyConfig", "ReportConfig", "TrackingConfig",
           "AdapterConfig", "RunConfig"]


@dataclass
class GroupConfig:
    """One group of `mask.groups`: its leaves (selectors, within the mask) and its sampler
    (a `sampler` option's own keys; the shared ones come from the run's `sampler`) and the
    `prior` keys it sets differently from the run's (`headbayes.posterior.priors`)."""

    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    sampler: Any = field(default_factory=dict)
    prior: dict = field(default_factory=dict)  # the run's `prior` keys this group changes


@dataclass
class MaskConfig:
    include: list[str] = field(default_factory=lambda: ["output_layer"])
    exclude: list[str] = field(default_factory=list)
    groups: dict[str, Any] = field(default_factory=dict)  # name -> GroupConfig (Gibbs)


@dataclass
class BodyConfig:
    mode: str = "frozen"
    optimizer: str = "adam"
    lr: float = 0.01
    steps: int = 2000
    weight_decay: Optional[float] = None  # null: the run's likelihood and prior (pretrain.py)
    patience: int = 500  # steps without a better validation loss before pretraining stops
    data: Any = field(default_factory=dict)  # body=pretrained: another (generated) task to
    # pretrain on, a data option's keys with its name; {}: the run's data


@dataclass
class ReportConfig:
    plots: Any = True  # true or false (a bool field would take 2 as true; `validate` checks);
    # false: metrics.json only (big sweeps); `headbayes report` draws them


@dataclass
class TrackingConfig:
    """`+tracking=mlflow` (`headbayes.report.tracking`); never a setting of the chain."""

    backend: str = "none"  # none | mlflow
    experiment: str = "headbayes"  # the MLflow experiment's name
    uri: str = ""  # "": $MLFLOW_TRACKING_URI, else a file store under the output directory


@dataclass
class AdapterConfig:
    """LoRA adapters on linear layers (`headbayes.models.adapters`)."""

    targets: list[str] = field(default_factory=list)  # selectors of linear layers; [] none
    rank: int = 2
    alpha: float = 2.0  # the update is (alpha / rank) · B A
    seed: int = 0  # PRNGKey(seed) draws the A factors


@dataclass
class RunConfig:
    """`data`, `model`, `likelihood`, `prior` and `sampler` hold a dict while Hydra composes
    and the option's schema (a dataclass) after `typed`."""

    seed: int = 0
    data: Any = field(default_factory=dict)
    model: Any = field(default_factory=dict)
    body: BodyConfig = field(default_factory=BodyConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    adapters: AdapterConfig = field(default_factory=AdapterConfig)
    likelihood: Any = field(default_factory=dict)
    prior: Any = field(default_factory=dict)  # a family's keys (headbayes.posterior.priors)
    sampler: Any = field(default_factory=dict)
    report: ReportConfig = field(default_factory=ReportConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
