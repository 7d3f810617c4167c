"""LoRA adapters (`headbayes.models.adapters`): the adapted model, its leaves, what a run
samples."""

import numpy as np
import pytest

import headbayes
from headbayes.config.saved import load_config
from headbayes.core import store
from headbayes.report.diagnostics import ess_bulk
from headbayes.core.errors import ConfigError

NUTS = ["sampler=nuts", "sampler.num_chains=4", "sampler.warmup=500", "sampler.keep=1000"]


def _model(*overrides):
    from headbayes.engine.programs import build_model

    return build_model(headbayes.compose(["+experiment=sin_head", *overrides]))


def test_adapters_start_as_the_plain_model_and_add_scaled_b_times_a():
    import equinox as eqx
    import jax.numpy as jnp

    from headbayes.models import forward

    x = jnp.linspace(-1, 1, 7)[:, None]
    plain = _model()
    adapted = _model("adapters.targets=[hidden_layers.1,output_layer]", "adapters.rank=3",
                     "adapters.alpha=6")
    np.testing.assert_array_equal(forward(adapted, x), forward(plain, x))  # B = 0 exactly
    layer = adapted.hidden_layers[1]
    assert layer.lora_a.shape == (3, 16) and layer.lora_b.shape == (16, 3)
    b = jnp.ones_like(layer.lora_b)
    moved = eqx.tree_at(lambda m: m.hidden_layers[1].lora_b, adapted, b)
    expected = eqx.tree_at(lambda m: m.hidden_layers[1].weight, plain,
                           plain.hidden_layers[1].weight + 2.0 * b @ layer.lora_a)
    np.testing.assert_allclose(forward(moved, x), forward(expected, x), rtol=1e-6)


def test_bad_adapter_settings_exit_2():
    with pytest.raises(ConfigError, match="matches no linear layer; the model's linear layers: "
                                          "hidden_layers.0, hidden_layers.1, output_layer"):
        _model("adapters.targets=[hidden]")
    with pytest.raises(ConfigError, match="`adapters.rank`"):
        headbayes.compose(["+experiment=sin_head", "adapters.rank=0"])
    with pytest.raises(ConfigError, match="pretrained when body.data is set"):
        headbayes.compose(["+experiment=sin_head", "+body.data={name: sin}"])
    with pytest.raises(ConfigError, match="a generated dataset"):
        headbayes.compose(["+experiment=sin_head", "body=pretrained",
                           "+body.data={name: csv, path: x.csv}"])


@pytest.mark.slow  # 8 s (pretraining); the test below checks a run's chain without it
def test_a_lora_run_stores_only_the_sampled_factors_and_pretraining_leaves_them(run_in_process):
    figures, _, run_dir = run_in_process(
        "+experiment=sin_lora", "sampler.warmup=30", "sampler.keep=10", "body.steps=200",
        name="lora")
    chain = store.load_chain(run_dir)
    assert sorted(chain) == ["hidden_layers.0.lora_b", "hidden_layers.1.lora_b"]
    from headbayes.core.rundir import RunFiles

    files = RunFiles(run_dir)
    trained, initial = files.read_params(), files.read_params(initial=True)
    assert not np.array_equal(trained["hidden_layers.1.weight"], initial["hidden_layers.1.weight"])
    for path in ("hidden_layers.0.lora_a", "hidden_layers.1.lora_a", "hidden_layers.1.lora_b"):
        np.testing.assert_array_equal(trained[path], initial[path])  # pretraining left them
    assert figures["unmasked_var_max"] == 0.0
    table = files.read_json(files.MASK)
    assert table["sampled_size"] == 64 and table["sampled_leaves"] == 2


@pytest.mark.slow  # about 4-6 s: make test-all
def test_b_factors_of_an_output_adapter_reach_their_gaussian_posterior(run_in_process):
    """With A frozen, f = W φ + b + s B (A φ) is linear in B: a Gaussian likelihood and prior
    make B's posterior Gaussian, computed here by hand; NUTS must match it within Monte-Carlo
    error (means within 4 MCSE, variances within 4 sd of the variance estimate)."""
    _, _, run_dir = run_in_process(
        "+experiment=sin_head", *NUTS, "sampler.mass_matrix=dense", "sampler.init_jitter=0.1",
        "adapters.targets=[output_layer]", "adapters.rank=2", "adapters.alpha=2",
        "mask.include=[output_layer.lora_b]", "likelihood.sigma=0.1", "likelihood.reduction=sum",
        "prior.sigma=1", name="out")
    from headbayes.datasets import make_dataset
    from headbayes.core.rundir import RunFiles

    files = RunFiles(run_dir)
    p = {k: v.astype(np.float64) for k, v in files.read_params().items()}
    data = make_dataset(load_config(files).data)
    h = data.x_train.astype(np.float64)
    for i in range(2):
        h = np.tanh(h @ p[f"hidden_layers.{i}.weight"].T + p[f"hidden_layers.{i}.bias"])
    design = 1.0 * h @ p["output_layer.lora_a"].T  # s = alpha / rank = 1; B is (1, 2)
    offset = h @ p["output_layer.weight"].T[:, 0] + p["output_layer.bias"][0]
    precision = design.T @ design / 0.1**2 + np.eye(2)
    cov = np.linalg.inv(precision)
    mean = cov @ design.T @ (data.y_train[:, 0] - offset) / 0.1**2
    chain = store.load_chain(run_dir)
    assert list(chain) == ["output_layer.lora_b"]  # the chain holds the sampled factor only
    draws = chain["output_layer.lora_b"].astype(np.float64).reshape(4, -1, 2)
    pooled = draws.reshape(-1, 2)
    ess = ess_bulk(draws)
    assert np.all(np.abs(pooled.mean(0) - mean) < 4 * pooled.std(0, ddof=1) / np.sqrt(ess))
    assert np.all(np.abs(pooled.var(0, ddof=1) / np.diag(cov) - 1) < 4 * np.sqrt(2 / ess))
