"""Minibatch gradient estimates: unbiased over a partition of the data, drawn inside the loop."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from headbayes.datasets.synthetic import CurveOptions
from headbayes.posterior.likelihoods import GaussianOptions, make_likelihood
from headbayes.datasets import make_dataset
from headbayes.models.mask import build_mask
from conftest import make_mlp
from headbayes.posterior.density import Problem, make_logdensity_fn, minibatch
from headbayes.core.store import load_chain_and_info


def _problem(n_train):
    params, static = eqx.partition(make_mlp(), eqx.is_inexact_array)
    position, frozen = eqx.partition(params, build_mask(params, ["hidden_layers.1"], []))
    data = make_dataset(CurveOptions(n_train=n_train))
    problem = Problem(frozen, jnp.asarray(data.x_train), jnp.asarray(data.y_train),
                      jnp.float32(0.05), jnp.float32(10.0), jnp.float32(1.0))
    return position, static, problem


def gaussian(reduction: str):
    return make_likelihood(GaussianOptions(reduction=reduction)).log_likelihood

@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("batch_size", [1, 8, 48])
def test_average_over_a_partition_equals_full_gradient(reduction, batch_size):
    position, static, problem = _problem(96)
    grad = jax.jit(jax.grad(make_logdensity_fn(static, gaussian(reduction))))
    order = np.random.default_rng(1).permutation(96)
    batches = order.reshape(-1, batch_size)
    estimates = [grad(position, minibatch(problem, jnp.asarray(b))) for b in batches]
    average = jax.tree.map(lambda *g: np.mean(np.stack(g), axis=0, dtype=np.float64),
                           *estimates)
    for got, want in zip(jax.tree.leaves(average), jax.tree.leaves(grad(position, problem))):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
    # a single batch is not the full gradient (the test could fail)
    if batch_size < 96:
        single = jax.tree.leaves(estimates[0])[0]
        assert not np.allclose(single, jax.tree.leaves(grad(position, problem))[0], rtol=1e-3)


def test_minibatch_scale_is_n_over_batch():
    _, _, problem = _problem(96)
    batch = minibatch(problem, jnp.arange(8))
    assert batch.x.shape == (8, 1) and float(batch.data_scale) == 12.0


@pytest.mark.parametrize("sampler", ["sgld", pytest.param("sghmc", marks=pytest.mark.slow)])
def test_minibatch_chain_differs_from_full_batch_and_is_reproducible(run_in_process, sampler):
    common = ("+experiment=sin_head", f"sampler={sampler}", "sampler.warmup=50",
              "sampler.keep=30", "sampler.step_size=1e-4")
    _, _, full_dir = run_in_process(*common, name="full")
    _, _, batch_dir = run_in_process(*common, "sampler.batch_size=8", name="batch")
    _, _, again_dir = run_in_process(*common, "sampler.batch_size=8", name="again")
    full, _ = load_chain_and_info(full_dir)
    batched, _ = load_chain_and_info(batch_dir)
    again, _ = load_chain_and_info(again_dir)
    weight = "output_layer.weight"
    assert np.all(np.isfinite(batched[weight]))
    assert not np.allclose(batched[weight], full[weight])
    np.testing.assert_array_equal(batched[weight], again[weight])


@pytest.mark.parametrize("override, message", [
    ("sampler.batch_size=33", "at most data.n_train"),
    ("sampler=nuts sampler.batch_size=8", "sampler 'nuts' has no key sampler.batch_size"),
    ("sampler.batch_size=-1", "an integer >= 0")])
def test_bad_batch_size_exits_2(refused_run, override, message):
    result = refused_run("+experiment=sin_head", *override.split())
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
