"""Sufficient statistics of a linear Gaussian head stand in for the data exactly."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import headbayes
from conftest import make_mlp
from headbayes.datasets import make_dataset
from headbayes.datasets.synthetic import CurveOptions
from headbayes.models.prefix import compute_features
from headbayes.posterior.likelihoods import GaussianOptions, make_likelihood
from headbayes.models.mask import build_mask
from headbayes.posterior.density import Problem, make_logdensity_fn
from headbayes.posterior.sufficient import HeadStats, head_stats, make_stats_logdensity_fn


@pytest.mark.parametrize("include", [["output_layer"], ["output_layer.weight"],
                                     ["output_layer.bias"]])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_statistics_give_the_data_paths_logdensity_and_gradient(include, reduction):
    model = make_mlp(depth=2, width=16, out_features=2)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    position, frozen = eqx.partition(params, build_mask(params, include, []))
    data = make_dataset(CurveOptions(n_train=500))
    y = jnp.concatenate([data.y_train, 0.5 * data.y_train ** 2], axis=1)  # two outputs
    phi = compute_features(params, static, jnp.asarray(data.x_train), 2)
    likelihood = make_likelihood(GaussianOptions(reduction=reduction))
    sigmas = (jnp.float32(0.05), jnp.float32(3.0), jnp.float32(1.0))
    on_data = Problem(frozen, phi, y, *sigmas)
    on_stats = Problem(frozen, head_stats(phi, y, model, "output_layer"), jnp.zeros((0,)),
                       *sigmas)
    data_fn = make_logdensity_fn(static, likelihood.log_likelihood, 2)
    stats_fn = make_stats_logdensity_fn(static, likelihood.from_squares, "output_layer")
    moved = jax.tree.map(lambda a: a + 0.1 * jnp.cos(jnp.arange(a.size).reshape(a.shape)),
                         position)  # away from the centring point
    for at in (position, moved):
        np.testing.assert_allclose(stats_fn(at, on_stats), data_fn(at, on_data), rtol=1e-4)
        for got, want in zip(jax.tree.leaves(jax.jit(jax.grad(stats_fn))(at, on_stats)),
                             jax.tree.leaves(jax.jit(jax.grad(data_fn))(at, on_data))):
            np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4 * np.abs(want).max())
    # the written-out derivative differentiates again (Laplace's Hessian)
    for got, want in zip(jax.tree.leaves(jax.jit(jax.hessian(stats_fn))(moved, on_stats)),
                         jax.tree.leaves(jax.jit(jax.hessian(data_fn))(moved, on_data))):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4 * np.abs(want).max())


@pytest.mark.parametrize("overrides, uses_statistics", [
    ([], True),
    (["sampler.batch_size=100"], False),  # minibatches keep the data path
    (["model.cache_features=false"], False),
    (["mask=last_two"], False),  # not only the linear head
    (["model.width=2000"], False),  # width + 1 > N: the data path is cheaper
])
def test_runs_use_the_statistics_where_they_apply(overrides, uses_statistics):
    from headbayes.job.plan import build_position, prepare_loop

    cfg = headbayes.compose(["+experiment=sin_head", "data.n_train=1000", *overrides])
    loop, _ = prepare_loop(cfg, *build_position(cfg))
    assert isinstance(loop.problem.x, HeadStats) == uses_statistics
