"""Typed config schema (registered in Hydra's ConfigStore) and range checks.

Only plain dataclasses live here; `cli.py`/`app.py` turn a composed `DictConfig` into a
`RunConfig` with `OmegaConf.to_object` and call `validate` before anything compiles.
"""

import dataclasses
import difflib
import math
from dataclasses import dataclass, field

from headbayes.errors import ConfigError

__all__ = [
    "DataConfig",
    "ModelConfig",
    "BodyConfig",
    "MaskConfig",
    "LikelihoodConfig",
    "PriorConfig",
    "SamplerConfig",
    "RunConfig",
    "CONFIG_GROUPS",
    "validate",
    "check_key",
    "data_inputs",
    "register_schema",
    "flat_values",
    "differences",
]


@dataclass
class DataConfig:
    name: str = "sin"
    n_train: int = 32
    noise_std: float = 0.05
    seed: int = 0
    x_min: float = -1.0
    x_max: float = 1.0
    eval_step: float = 0.02
    n_test: int = 0
    gap_min: float = -0.3
    gap_max: float = 0.3
    path: str = ""
    inputs: list[str] = field(default_factory=list)
    target: str = ""
    test_fraction: float = 0.2
    standardize: bool = True


@dataclass
class ModelConfig:
    name: str = "mlp"
    in_features: int = 1
    out_features: int = 1
    width: int = 16
    depth: int = 2
    activation: str = "tanh"
    seed: int = 0
    cache_features: bool = True


@dataclass
class MaskConfig:
    include: list[str] = field(default_factory=lambda: ["output_layer"])
    exclude: list[str] = field(default_factory=list)


@dataclass
class LikelihoodConfig:
    sigma: float = 0.05
    reduction: str = "mean"


@dataclass
class PriorConfig:
    sigma: float = 10.0


@dataclass
class SamplerConfig:
    name: str = "sgld"
    step_size: float = 1e-3
    temperature: float = 1.0
    warmup: int = 1500
    keep: int = 400
    thin: int = 2
    num_chains: int = 1
    init_jitter: float = 0.0
    num_integration_steps: int = 10
    mass_matrix: str = "diagonal"
    target_accept: float = 0.8
    friction: float = 0.01
    learning_rate: float = 0.01
    num_mc_samples: int = 5
    batch_size: int = 0


@dataclass
class BodyConfig:
    mode: str = "frozen"
    optimizer: str = "adam"
    lr: float = 0.01
    steps: int = 2000


@dataclass
class RunConfig:
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    body: BodyConfig = field(default_factory=BodyConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    likelihood: LikelihoodConfig = field(default_factory=LikelihoodConfig)
    prior: PriorConfig = field(default_factory=PriorConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)


CONFIG_GROUPS = ("data", "model", "body", "mask", "sampler", "experiment", "sweep", "launcher")
DATASETS = ("sin", "sin3", "gap", "friedman1", "csv", "npz")
MODELS = ("mlp",)
SAMPLERS = ("sgld", "sghmc", "mala", "hmc", "nuts", "vi", "laplace")
STOCHASTIC_GRADIENT = ("sgld", "sghmc")
FITTED = ("vi", "laplace")
MASS_MATRICES = ("diagonal", "dense")
BODY_MODES = ("frozen", "pretrained", "joint")
BODY_OPTIMIZERS = ("adam", "sgd")
ACTIVATIONS = ("tanh", "relu", "sigmoid", "silu")
REDUCTIONS = ("mean", "sum")


def register_schema() -> None:
    """Register `RunConfig` as `base_config` so Hydra type-checks every composition."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="base_config", node=RunConfig)


def _all_keys(cls=RunConfig, prefix: str = "") -> list[str]:
    keys = []
    for f in dataclasses.fields(cls):
        name = prefix + f.name
        if dataclasses.is_dataclass(f.type):
            keys.extend(_all_keys(f.type, name + "."))
        else:
            keys.append(name)
    return keys


def flat_values(cfg: RunConfig) -> dict:
    """{dotted key: value} of every leaf of `cfg`."""
    def walk(node: dict, prefix: str):
        for key, value in node.items():
            if isinstance(value, dict):
                yield from walk(value, prefix + key + ".")
            else:
                yield prefix + key, value

    return dict(walk(dataclasses.asdict(cfg), ""))


def differences(saved: RunConfig, given: RunConfig) -> list[str]:
    """'key (saved S, given G)' for every key whose value differs; every key shapes the chain."""
    old, new = flat_values(saved), flat_values(given)
    return [f"{key} (saved {old[key]!r}, given {new[key]!r})" for key in old
            if old[key] != new[key]]


def check_key(key: str) -> None:
    """Raise ConfigError if dotted `key` is not a config key (names the closest one)."""
    keys = _all_keys()
    sections = {k.split(".")[0] for k in keys}
    if key in keys or key in sections:
        return
    close = difflib.get_close_matches(key, keys, n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ConfigError(f"unknown config key '{key}'{hint} (valid keys: {', '.join(keys)})")


def _require(ok: bool, key: str, value, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"`{key}` must be {allowed}, got {value!r}")


def _positive_float(key: str, value) -> None:
    _require(math.isfinite(value) and value > 0, key, value, "a finite number > 0")


def _choice(key: str, value, allowed: tuple[str, ...]) -> None:
    _require(value in allowed, key, value, "one of " + ", ".join(allowed))


def data_inputs(cfg: DataConfig) -> int:
    """Number of input columns of a dataset."""
    return {"friedman1": 5, "csv": len(cfg.inputs), "npz": len(cfg.inputs)}.get(cfg.name, 1)


def validate(cfg: RunConfig) -> RunConfig:
    """Range-check every value; raise ConfigError naming key, value and what is allowed."""
    d, m, s = cfg.data, cfg.model, cfg.sampler
    _choice("data.name", d.name, DATASETS)
    _require(d.n_train >= 1, "data.n_train", d.n_train, "an integer >= 1")
    _require(d.n_test >= 0, "data.n_test", d.n_test, "an integer >= 0")
    _require(0 < d.test_fraction < 1, "data.test_fraction", d.test_fraction,
             "a number in (0, 1)")
    if d.name == "gap":
        _require(d.x_min < d.gap_min < d.gap_max < d.x_max, "data.gap_max", d.gap_max,
                 "such that x_min < gap_min < gap_max < x_max")
    if d.name in ("csv", "npz"):
        _require(bool(d.path), "data.path", d.path, f"a file for data '{d.name}'")
        _require(len(d.inputs) >= 1 and bool(d.target), "data.inputs", list(d.inputs),
                 "a non-empty list of column names, with data.target naming the target column")
    _require(math.isfinite(d.noise_std) and d.noise_std >= 0, "data.noise_std", d.noise_std,
             "a finite number >= 0")
    _require(math.isfinite(d.x_min), "data.x_min", d.x_min, "finite")
    _require(math.isfinite(d.x_max) and d.x_max > d.x_min, "data.x_max", d.x_max,
             f"finite and > data.x_min ({d.x_min})")
    _positive_float("data.eval_step", d.eval_step)
    _require((d.x_max - d.x_min) / d.eval_step <= 1e6, "data.eval_step", d.eval_step,
             "large enough for at most 1e6 eval points")
    _choice("model.name", m.name, MODELS)
    _choice("model.activation", m.activation, ACTIVATIONS)
    for key in ("in_features", "out_features", "width"):
        _require(getattr(m, key) >= 1, f"model.{key}", getattr(m, key), "an integer >= 1")
    inputs = data_inputs(d)
    _require(m.in_features == inputs, "model.in_features", m.in_features,
             f"{inputs} (the number of inputs of data '{d.name}')")
    _require(m.out_features == 1, "model.out_features", m.out_features, f"1 for data '{d.name}'")
    _require(m.depth >= 0, "model.depth", m.depth, "an integer >= 0")
    _choice("body.mode", cfg.body.mode, BODY_MODES)
    _choice("body.optimizer", cfg.body.optimizer, BODY_OPTIMIZERS)
    _positive_float("body.lr", cfg.body.lr)
    _require(cfg.body.steps >= 1, "body.steps", cfg.body.steps, "an integer >= 1")
    if cfg.body.mode == "joint":
        _require(s.name not in FITTED, "sampler.name", s.name,
                 "a stepping sampler (sgld, sghmc, mala, hmc, nuts) with body.mode=joint")
    _positive_float("likelihood.sigma", cfg.likelihood.sigma)
    _choice("likelihood.reduction", cfg.likelihood.reduction, REDUCTIONS)
    _positive_float("prior.sigma", cfg.prior.sigma)
    _choice("sampler.name", s.name, SAMPLERS)
    _positive_float("sampler.step_size", s.step_size)
    if s.name in STOCHASTIC_GRADIENT:
        _require(math.isfinite(s.temperature) and s.temperature >= 0, "sampler.temperature",
                 s.temperature, "a finite number >= 0")
    else:
        _positive_float("sampler.temperature", s.temperature)
    if s.name in FITTED:
        _require(s.warmup >= 1, "sampler.warmup", s.warmup,
                 f"an integer >= 1 (the fitting steps of '{s.name}')")
    _require(s.warmup >= 0, "sampler.warmup", s.warmup, "an integer >= 0")
    _require(s.keep >= 1, "sampler.keep", s.keep, "an integer >= 1")
    _require(s.thin >= 1, "sampler.thin", s.thin, "an integer >= 1")
    _require(s.num_chains >= 1, "sampler.num_chains", s.num_chains, "an integer >= 1")
    _require(math.isfinite(s.init_jitter) and s.init_jitter >= 0, "sampler.init_jitter",
             s.init_jitter, "a finite number >= 0")
    _require(s.num_integration_steps >= 1, "sampler.num_integration_steps",
             s.num_integration_steps, "an integer >= 1")
    _choice("sampler.mass_matrix", s.mass_matrix, MASS_MATRICES)
    _require(0 < s.target_accept < 1, "sampler.target_accept", s.target_accept,
             "a number in (0, 1)")
    _positive_float("sampler.friction", s.friction)
    _positive_float("sampler.learning_rate", s.learning_rate)
    _require(s.num_mc_samples >= 1, "sampler.num_mc_samples", s.num_mc_samples,
             "an integer >= 1")
    _require(s.batch_size >= 0, "sampler.batch_size", s.batch_size,
             "an integer >= 0 (0: the full data every step)")
    if s.batch_size > 0:
        _require(s.name in STOCHASTIC_GRADIENT, "sampler.batch_size", s.batch_size,
                 "0 for sampler '" + s.name + "' (minibatches need sgld or sghmc)")
        if d.name not in ("csv", "npz"):
            _require(s.batch_size <= d.n_train, "sampler.batch_size", s.batch_size,
                     f"at most data.n_train ({d.n_train})")
    _require(len(cfg.mask.include) >= 1, "mask.include", list(cfg.mask.include),
             "a non-empty list of selectors")
    return cfg
