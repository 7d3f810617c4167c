"""The sampling loop's compile options (`headbayes.core.xla`)."""

import equinox as eqx
import jax
import numpy as np
import pytest

import headbayes
from headbayes.core import xla


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


@pytest.mark.slow
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


@pytest.mark.parametrize("experiment", ["sin_head", "moons_head", "sin_lora", "digits_cnn_head"])
def test_the_report_s_function_draws_are_those_of_xla_s_defaults(fresh_options, experiment):
    """`predictive` compiles with `xla.ONCE_OPTIONS`: the same function draws as XLA's defaults,
    bit for bit through dense layers; a convolution's may round differently in float32's last
    bits (a figure of the report is a smooth function of them: no chain amplifies it)."""
    from headbayes.engine import predictive, programs
    from headbayes.models.mask import named_leaves
    from headbayes.engine.programs import build_model
    from headbayes.models import model_sizes

    cfg = headbayes.compose([f"+experiment={experiment}"])
    model = eqx.filter(build_model(cfg), eqx.is_array)
    params = {p: np.asarray(v) for p, v in named_leaves(model).items()}
    rng = np.random.default_rng(0)
    sampled = [p for p in params if p.startswith(("output_layer", "adapters"))] or list(params)
    chain = {p: (params[p] + rng.normal(size=(2, 3) + params[p].shape)).astype(np.float32)
             for p in sampled}
    x = rng.normal(size=(7, model_sizes(cfg)[0])).astype(np.float32)
    draws = []
    for options in (None, {}):  # headbayes' options, then XLA's defaults
        if options is not None:
            fresh_options.setattr(xla, "compiler_options", lambda once=False: options)
        programs.forget("draws")
        draws.append(predictive.function_draws(cfg, params, chain, x))
    programs.forget("draws")
    assert draws[0].shape[:3] == (2, 3, 7)
    if cfg.model.name == "cnn":
        np.testing.assert_allclose(draws[0], draws[1], rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_array_equal(draws[0], draws[1])
