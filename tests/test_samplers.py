"""Every sampler on the seed's head; HMC and NUTS against the exact posterior."""

import numpy as np
import pytest

from exact_check import assert_at_exact_posterior
from headbayes import store
from headbayes.errors import ConfigError
from headbayes.samplers import SAMPLERS

TINY = ["sampler.warmup=60", "sampler.keep=20", "sampler.thin=1", "sampler.num_chains=2"]


def test_every_registered_sampler_has_a_config_file():
    from pathlib import Path

    from headbayes.cli import PACKAGE_CONFIGS

    files = {p.stem for p in (Path(PACKAGE_CONFIGS) / "sampler").glob("*.yaml")}
    assert set(SAMPLERS.names()) == files


def test_a_key_the_sampler_does_not_have_names_the_sampler_and_its_keys():
    import headbayes

    with pytest.raises(ConfigError, match=r"sampler 'sgld' has no key sampler.friction; its "
                                          r"keys: name, temperature, .*step_size, batch_size"):
        headbayes.compose(["+experiment=sin_head", "sampler.friction=0.5"])
    with pytest.raises(ConfigError, match=r"data 'sin' has no key data.gap_min"):
        headbayes.compose(["+experiment=sin_head", "data.gap_min=0.1"])
    assert headbayes.compose(["+experiment=sin_head", "sampler=sghmc",
                              "sampler.friction=0.5"]).sampler.friction == 0.5


@pytest.mark.parametrize("sampler", [n for n in SAMPLERS.names()
                                     if "composite" not in SAMPLERS[n].caps])
def test_frozen_leaves_bit_identical_under_every_sampler(run_in_process, sampler):
    figures, _, run_dir = run_in_process(
        "+experiment=sin_head", f"sampler={sampler}", *TINY, "mask.include=[output_layer.weight]",
        name=sampler)
    chain = store.load_chain(run_dir)
    assert list(chain) == ["output_layer.weight"]
    assert chain["output_layer.weight"].shape[:2] == (2, 20)
    # frozen leaves (the body and output_layer.bias) never move: exactly zero variance
    assert figures["unmasked_var_max"] == 0.0
    assert figures["masked_var_min"] > 0
    assert np.isfinite(figures["rel_l2"])


@pytest.mark.parametrize("sampler", ["nuts", "hmc"])
def test_matches_exact_posterior_within_monte_carlo_error(run_in_process, sampler):
    figures, extras, run_dir = run_in_process(
        "+experiment=sin_head", f"sampler={sampler}", "sampler.mass_matrix=dense",
        "sampler.num_chains=4", "sampler.warmup=500", "sampler.keep=1000", name=sampler)
    assert_at_exact_posterior(run_dir, figures, extras)


def test_report_says_when_no_exact_reference_applies(run_in_process):
    figures, extras, _ = run_in_process(
        "+experiment=sin_head", *TINY, "mask.include=[output_layer,hidden_layers.1.bias]")
    assert not any(key.startswith("exact_") or key in ("mean_z_max", "var_ratio_min")
                   for key in figures)
    assert extras["exact"] is None
    note = extras["notes"][0]
    assert "no exact reference" in note and "hidden_layers.1.bias" in note


def test_sgld_seed_run_is_far_from_the_exact_posterior(run_in_process):
    """The seed's own run: the verdict warns, and the chain's variance is a small fraction of
    the posterior's (the chain has not mixed), while the exact mean fits the target well."""
    figures, _, _ = run_in_process("+experiment=sin_head")
    assert figures["verdict"] != "ok"
    assert figures["var_ratio_max"] < 0.1
    assert figures["exact_rel_l2"] < 0.1 < figures["rel_l2"]
