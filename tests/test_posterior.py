import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest

from headbayes.datasets.synthetic import CurveOptions
from headbayes.posterior.likelihoods import GaussianOptions, make_likelihood
from headbayes.datasets import make_dataset
from headbayes.models.mask import build_mask
from conftest import make_mlp
from headbayes.posterior.density import Problem, make_logdensity_fn


def gaussian(reduction: str):
    return make_likelihood(GaussianOptions(reduction=reduction)).log_likelihood

@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_logdensity_matches_formula(reduction):
    model = make_mlp()
    params, static = eqx.partition(model, eqx.is_inexact_array)
    position, frozen = eqx.partition(params, build_mask(params, ["output_layer"], []))
    data = make_dataset(CurveOptions())
    problem = Problem(frozen, data.x_train, data.y_train, jnp.float32(0.05), jnp.float32(10.0))
    value = make_logdensity_fn(static, gaussian(reduction))(position, problem)

    r = (np.asarray(model(data.x_train)) - data.y_train) / 0.05
    loglik = -np.mean(r**2) if reduction == "mean" else -0.5 * np.sum(r**2)
    head = model.output_layer
    logprior = -(np.sum(np.asarray(head.weight) ** 2) + np.sum(np.asarray(head.bias) ** 2)) / 200
    np.testing.assert_allclose(value, loglik + logprior, rtol=1e-5)
