"""The sampling loop's compile options (`headbayes.xla`)."""

import jax
import numpy as np
import pytest

import headbayes
from headbayes import xla


@pytest.fixture
def fresh_options(monkeypatch):
    """`xla.compiler_options` looked up again under the test's environment."""
    xla.compiler_options.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    xla.compiler_options.cache_clear()


def test_the_cpu_loop_uses_the_older_fusion_emitters(fresh_options):
    assert jax.default_backend() == "cpu"
    assert xla.compiler_options() == {"xla_cpu_use_fusion_emitters": False}


def test_a_program_run_once_also_drops_llvm_to_optimisation_level_1(fresh_options):
    assert xla.compiler_options(once=True) == {"xla_cpu_use_fusion_emitters": False,
                                               "xla_backend_optimization_level": 1}


def test_headbayes_xla_defaults_restores_xla_s_own_options(fresh_options):
    fresh_options.setenv("HEADBAYES_XLA_DEFAULTS", "1")
    assert xla.compiler_options() == {}
    assert xla.compiler_options(once=True) == {}


def test_an_option_this_xla_does_not_know_falls_back_to_the_defaults(fresh_options):
    fresh_options.setattr(xla, "CPU_OPTIONS", {"xla_cpu_no_such_option_at_all": True})
    fresh_options.setattr(xla, "ONCE_OPTIONS", {"xla_cpu_no_such_option_either": 1})
    assert xla.compiler_options() == {}
    assert xla.compiler_options(once=True) == {}
    assert float(xla.jit(lambda x: x * 2)(np.float32(3))) == 6.0
    assert float(xla.jit_once(lambda x: x * 3)(np.float32(3))) == 9.0


def test_jit_hands_the_options_to_xla(fresh_options):
    fresh_options.setattr(xla, "compiler_options", lambda: {"xla_cpu_no_such_option": True})
    with pytest.raises(Exception, match="xla_cpu_no_such_option"):  # XLA saw it, refused it
        xla.jit(lambda x: 2 * x)(np.float32(2))
    fresh_options.setattr(xla, "compiler_options", lambda: dict(xla.CPU_OPTIONS))
    double = xla.jit(lambda x: 2 * x)
    assert float(double(np.float32(2))) == 4.0
    assert "multiply" in double.lower(np.float32(1)).compile().as_text()


def test_the_seed_s_chains_are_bit_identical_under_both_options(run_in_process, monkeypatch):
    """The claim of the module docstring, on sin_head (SGLD) and a short jittered NUTS run."""
    for overrides in (["+experiment=sin_head", "sampler.keep=50", "sampler.warmup=100"],
                      ["+experiment=sin_head_nuts", "sampler.keep=30", "sampler.warmup=40"]):
        chains = []
        for defaults in ("0", "1"):
            monkeypatch.setenv("HEADBAYES_XLA_DEFAULTS", defaults)
            xla.compiler_options.cache_clear()
            _, _, run_dir = run_in_process(*overrides, name=f"{overrides[0][13:]}{defaults}")
            chains.append(headbayes.load_run(run_dir).draws("output_layer.weight"))
        np.testing.assert_array_equal(chains[0], chains[1])
    xla.compiler_options.cache_clear()
