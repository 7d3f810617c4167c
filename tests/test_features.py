"""Cached frozen-prefix features give the same log-density, gradients and chain as the full
forward."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import make_mlp
from headbayes.datasets import make_dataset
from headbayes.datasets.synthetic import CurveOptions
from headbayes.models.prefix import compute_features, first_sampled_stage
from headbayes.posterior.likelihoods import GaussianOptions, make_likelihood
from headbayes.models.mask import build_mask, named_leaves
from headbayes.posterior.density import Problem, make_logdensity_fn
from headbayes.core.store import load_chain_and_info


@pytest.mark.parametrize("include, expected", [
    (["output_layer"], 3), (["hidden_layers.2", "output_layer"], 2),
    (["hidden_layers.1"], 1), (["*.bias"], 0), (["output_layer.bias"], 3)])
def test_first_sampled_stage(include, expected):
    model = make_mlp(depth=3)
    params, _ = eqx.partition(model, eqx.is_inexact_array)
    mask = build_mask(params, include, [])
    assert first_sampled_stage(model, named_leaves(mask)) == expected


@pytest.mark.parametrize("include", [["output_layer"], ["hidden_layers.2", "output_layer"],
                                     ["hidden_layers.1"], ["*.bias"]])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cached_logdensity_and_gradient_equal_uncached(include, reduction):
    model = make_mlp(depth=3, width=32)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    mask = build_mask(params, include, [])
    position, frozen = eqx.partition(params, mask)
    data = make_dataset(CurveOptions(n_train=64))
    start = first_sampled_stage(model, named_leaves(mask))
    x = jnp.asarray(data.x_train)
    cached_x = compute_features(params, static, x, start)
    sigmas = (jnp.float32(0.05), jnp.float32(10.0), jnp.float32(1.0))
    full = Problem(frozen, x, jnp.asarray(data.y_train), *sigmas)
    cached = full._replace(x=cached_x)
    log_likelihood = make_likelihood(GaussianOptions(reduction=reduction)).log_likelihood
    full_fn = make_logdensity_fn(static, log_likelihood)
    cached_fn = make_logdensity_fn(static, log_likelihood, start)
    np.testing.assert_allclose(cached_fn(position, cached), full_fn(position, full), rtol=1e-6)
    for got, want in zip(jax.tree.leaves(jax.grad(cached_fn)(position, cached)),
                         jax.tree.leaves(jax.grad(full_fn)(position, full))):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * np.abs(want).max())


@pytest.mark.parametrize("mask", ["head", pytest.param("last_two", marks=pytest.mark.slow)])
def test_cached_run_equals_uncached_run(run_in_process, mask):
    common = ("+experiment=sin_head", f"mask={mask}", "sampler.warmup=200", "sampler.keep=100",
              "sampler.num_chains=2", "sampler.step_size=1e-4")
    _, _, cached_dir = run_in_process(*common, name="cached")
    _, _, full_dir = run_in_process(*common, "model.cache_features=false", name="full")
    cached, _ = load_chain_and_info(cached_dir)
    full, _ = load_chain_and_info(full_dir)
    assert cached.keys() == full.keys()
    for path in full:  # same noise; only float rounding of the forward pass differs
        np.testing.assert_allclose(cached[path], full[path], rtol=1e-4, atol=1e-5)
    from headbayes.core.store import read_json

    assert read_json(cached_dir / "meta.json")["timings"]["features_s"] > 0
    assert read_json(full_dir / "meta.json")["timings"]["features_s"] == 0
