import dataclasses
import math
from pathlib import Path

import pytest

import headbayes
from conftest import ROOT
from headbayes.app import cli
from headbayes.config.typed import RunConfig, check_key, validate
from headbayes.core.errors import ConfigError

EXPERIMENTS = sorted(p.stem for p in (Path(cli.PACKAGE_CONFIGS) / "experiment").glob("*.yaml"))


def seed_config() -> RunConfig:
    return headbayes.compose(["+experiment=sin_head"])


def with_sampler(sampler: str = "sgld", **changes) -> RunConfig:
    cfg = headbayes.compose(["+experiment=sin_head", f"sampler={sampler}"])
    name = changes.pop("name", None)
    if name is not None:  # an unknown sampler name: the registry refuses it
        changes = {}
        cfg.sampler = dataclasses.replace(cfg.sampler, name=name)
    cfg.sampler = dataclasses.replace(cfg.sampler, **changes)
    return cfg


@pytest.mark.parametrize("value", [-1.0, 0.0, math.nan, math.inf])
def test_bad_step_size_names_key_and_value(value):
    with pytest.raises(ConfigError, match=r"`sampler.step_size` must be a finite number > 0, got"):
        validate(with_sampler(step_size=value))


@pytest.mark.parametrize("key,value,allowed", [
    ("keep", 0, "an integer >= 1"),
    ("thin", 0, "an integer >= 1"),
    ("num_chains", 0, "an integer >= 1"),
    ("warmup", -1, "an integer >= 0"),
    ("name", "sgdl", "one of sgld, sghmc, mala, hmc, nuts, vi, laplace, exact, gibbs"),
    ("nuts:mass_matrix", "full", "one of diagonal, dense"),
    ("hmc:target_accept", 1.0, r"a number in \(0, 1\)"),
    ("init_jitter", -0.1, "a finite number >= 0"),
    ("temperature", 1e300, r"at most 1e\+30 \(the chains are float32\)"),  # B16 (round 5)
    ("init_jitter", 1e300, r"at most 1e\+30 \(the chains are float32\)"),
    ("step_size", 1e39, r"in \[1e-30, 1e\+30\] \(the chains are float32\)"),
    ("step_size", 1e-46, r"in \[1e-30, 1e\+30\] \(the chains are float32\)"),  # round 6
    ("vi:learning_rate", 1e300, r"in \[1e-30, 1e\+30\] \(the chains are float32\)"),
    ("hmc:num_integration_steps", 0, r"an integer in \[1, 1024\] \(one step runs in .*\)"),
    ("hmc:num_integration_steps", 2**20, r"an integer in \[1, 1024\] \(.*sampler=nuts\)"),
    ("sghmc:num_integration_steps", 1025, r"an integer in \[1, 1024\] \(.*\)"),
])
def test_bad_sampler_values(key, value, allowed):
    sampler, _, key = key.rpartition(":")
    with pytest.raises(ConfigError, match=f"`sampler.{key}` must be {allowed}, got"):
        validate(with_sampler(sampler or "sgld", **{key: value}))


def test_reduction_choices():
    cfg = seed_config()
    cfg.likelihood.reduction = "median"
    with pytest.raises(ConfigError, match="`likelihood.reduction` must be one of mean, sum"):
        validate(cfg)


def test_defaults_are_valid():
    validate(seed_config())


def test_unknown_key_names_closest():
    with pytest.raises(ConfigError, match="unknown config key 'sampler.stepsize'; did you mean "
                                          "'sampler.step_size'"):
        check_key("sampler.stepsize")
    check_key("sampler.step_size")
    check_key("sampler")


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes_and_validates(name):
    own_table = [f"data.path={ROOT / 'examples/own_model/yacht.csv'}", "data.target=resistance"]
    cfg = headbayes.compose([f"+experiment={name}", *(own_table if name == "tabular" else [])])
    assert isinstance(cfg, RunConfig)


def test_sin_head_is_the_seed_configuration():
    cfg = headbayes.compose(["+experiment=sin_head"])
    assert (cfg.data.n_train, cfg.data.noise_std, cfg.data.seed) == (32, 0.05, 0)
    assert (cfg.data.x_min, cfg.data.x_max, cfg.data.eval_step) == (-1.0, 1.0, 0.02)
    assert (cfg.model.width, cfg.model.depth, cfg.model.activation, cfg.model.seed) == (
        16, 2, "tanh", 0)
    assert cfg.mask.include == ["output_layer"] and cfg.mask.exclude == []
    assert (cfg.likelihood.sigma, cfg.likelihood.reduction, cfg.prior.sigma) == (0.05, "mean", 10.0)
    s = cfg.sampler
    assert (s.name, s.step_size, s.temperature, s.warmup, s.keep, s.thin, s.num_chains) == (
        "sgld", 1e-3, 1.0, 1500, 400, 2, 1)


def test_override_type_error_is_a_config_error():
    with pytest.raises(ConfigError, match="sampler.step_size.*could not be converted to Float"):
        headbayes.compose(["+experiment=sin_head", "sampler.step_size=fast"])


def test_unknown_group_option_lists_options():
    with pytest.raises(ConfigError, match="Could not find 'sampler/foo'.*sgld"):
        headbayes.compose(["sampler=foo"])


def test_preflight_checks_every_swept_value():
    with pytest.raises(ConfigError, match="`sampler.keep` must be an integer >= 1, got 0"):
        cli.preflight(["-m", "+experiment=sin_head", "seed=0,1", "sampler.keep=4,0"])
    cli.preflight(["-m", "+experiment=sin_head", "seed=0,1", "sampler.keep=4,5"])


@pytest.mark.parametrize("args,every_job", [
    (["+experiment=sin_head", "seed=3"], True),
    (["-m", "+experiment=sin_head", "seed=0,1", "sampler.step_size=1e-4,1e-3"], True),
    (["-m", "+experiment=sin_head", "seed=range(0,3)"], True),
    (["-m", "+experiment=sin_head", "sampler=sgld,sghmc"], False),  # a group: Hydra composes
    (["-m", "+experiment=sin_head,sin_head_nuts"], False),
    (["-m", "+experiment=sin_head", "sampler=glob(sg*)"], False),  # a glob: the jobs check
    (["-m", "+experiment=sin_head", "seed=0,1", "hydra.sweep.subdir=a,b"], False),
])
def test_preflight_says_whether_it_checked_every_job(args, every_job):
    assert cli.preflight(args) is every_job


def test_sweeper_composes_the_jobs_before_the_sweep_only_when_preflight_did_not(monkeypatch):
    """Hydra's check of a batch composes every job; after a preflight that checked every job
    it is skipped, so each job is composed once, when it runs."""
    import importlib.util
    from types import SimpleNamespace

    import hydra_plugins.headbayes_sweeper as plugin

    from headbayes.config.composition import PREFLIGHT

    monkeypatch.setitem(PREFLIGHT, "checked_every_job", True)  # as `headbayes run` sets it
    # then Hydra's plugin scan executes the plugin's module again
    importlib.util.find_spec(plugin.__name__).loader.exec_module(plugin)
    composed = []
    sweeper = plugin.CheckedSweeper(max_batch_size=None)
    loader = SimpleNamespace(load_sweep_config=lambda master_config, sweep_overrides:
                             composed.append(sweep_overrides))
    sweeper.hydra_context, sweeper.config = SimpleNamespace(config_loader=loader), {}
    batch = [("seed=0",), ("seed=1",)]
    sweeper.validate_batch_is_legal(batch)
    assert composed == []
    monkeypatch.setitem(PREFLIGHT, "checked_every_job", False)
    sweeper.validate_batch_is_legal(batch)
    assert composed == [["seed=0"], ["seed=1"]]


@pytest.mark.parametrize("group", ["data", "model", "likelihood", "sampler"])
def test_every_option_file_lists_exactly_its_schema_keys(group):
    import yaml

    from headbayes.config.typed import registry

    for path in (Path(cli.PACKAGE_CONFIGS) / group).glob("*.yaml"):
        values = yaml.safe_load(path.read_text())
        entry = registry(group)[values["name"]]
        assert list(values) == entry.keys(), path  # same order: saved configs round-trip


def test_report_keys_are_not_settings_of_the_chain():
    import dataclasses

    import headbayes
    from headbayes.config.typed import differences

    cfg = headbayes.compose(["+experiment=sin_head"])
    no_plots = dataclasses.replace(cfg, report=dataclasses.replace(cfg.report, plots=False))
    assert cfg.report.plots is True and differences(cfg, no_plots) == []
    assert differences(cfg, dataclasses.replace(no_plots, seed=3)) == ["seed (saved 0, given 3)"]


@pytest.mark.parametrize("override,key", [
    ("report.plots=2", "report.plots"),
    ("report.plots=0", "report.plots"),
    ("model.cache_features=5", "model.cache_features"),
    ("model.cache_features='no'", "model.cache_features"),
])
def test_a_bool_key_takes_true_or_false_only(override, key):
    """OmegaConf would read 2 (or "no") as true for a bool field."""
    with pytest.raises(ConfigError, match=rf"`{key}` must be true or false, got"):
        validate(headbayes.compose(["+experiment=sin_head", override]))
    assert validate(headbayes.compose(["+experiment=sin_head", f"{key}=false"]))
