"""Chains split across several devices (shard_map), with 4 CPU devices forced in a subprocess."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from exact_check import assert_at_exact_posterior
from headbayes.report.write import compute_report
from headbayes.engine.runner import chain_device_count
from headbayes.core.store import load_chain_and_info

FOUR_DEVICES = "--xla_force_host_platform_device_count=4"


def run(tmp_path, name, overrides, devices_flag=""):
    env = {**os.environ, "HEADBAYES_OUTPUT_DIR": str(tmp_path / "outputs"),
           "XLA_FLAGS": devices_flag}
    run_dir = tmp_path / name
    result = subprocess.run([sys.executable, "-m", "headbayes", "run", *overrides,
                             f"hydra.run.dir={run_dir}"], capture_output=True, text=True,
                            env=env)
    assert result.returncode == 0, result.stderr
    return run_dir


@pytest.mark.slow  # 9 s; the NUTS test below covers several devices in `make test`
def test_sgld_chains_on_four_devices_equal_one_device(tmp_path):
    overrides = ["+experiment=sin_head", "sampler.num_chains=4", "sampler.keep=100"]
    split = run(tmp_path, "split", overrides, FOUR_DEVICES)
    single = run(tmp_path, "single", overrides)
    assert json.loads((split / "meta.json").read_text())["chain_devices"] == 4
    assert json.loads((single / "meta.json").read_text())["chain_devices"] == 1
    a, info_a = load_chain_and_info(split)
    b, info_b = load_chain_and_info(single)
    for path in b:  # same keys, same steps; only float rounding may differ
        np.testing.assert_allclose(a[path], b[path], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(info_a["grad_evals"], info_b["grad_evals"])


@pytest.mark.parametrize("num_chains, available, expected",
                         [(8, 4, 4), (6, 4, 3), (5, 4, 1), (1, 8, 1), (1024, 1, 1), (12, 8, 6)])
def test_chains_use_the_most_devices_that_divide_them(num_chains, available, expected):
    assert chain_device_count(num_chains, available) == expected


@pytest.mark.slow
def test_nuts_on_several_devices_matches_the_exact_posterior(tmp_path):
    """6 chains on 3 of the 4 devices (the most that divide 6). Same criterion as
    test_samplers: every |mean - exact| / MCSE < 4, variance ratios in [0.85, 1.15]."""
    split = run(tmp_path, "split", ["+experiment=sin_head", "sampler=nuts",
                                    "sampler.mass_matrix=dense", "sampler.num_chains=6",
                                    "sampler.warmup=500", "sampler.keep=1000"], FOUR_DEVICES)
    assert json.loads((split / "meta.json").read_text())["chain_devices"] == 3
    assert_at_exact_posterior(split, *compute_report(split))
