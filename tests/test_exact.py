"""The closed-form head posterior against the log-density headbayes samples from."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import headbayes
from headbayes.datasets import make_dataset
from headbayes.analysis.exact import exact_posterior, not_applicable_reason
from headbayes.models.mask import named_leaves
from headbayes.job.plan import build_position
from headbayes.posterior.likelihoods import make_likelihood
from headbayes.posterior.density import Problem, make_logdensity_fn


@pytest.mark.parametrize("overrides", [
    [],
    ["likelihood.reduction=sum", "prior.sigma=1.0"],
    ["mask.include=[output_layer.weight]"],
    ["mask.include=[output_layer.bias]", "sampler.temperature=2.0"],
])
def test_exact_mean_and_precision_match_the_log_density(overrides):
    cfg = headbayes.compose(["+experiment=sin_head", *overrides])
    params, static, mask = build_position(cfg)
    position, frozen = eqx.partition(params, mask)
    data = make_dataset(cfg.data)
    named = {k: np.asarray(v) for k, v in named_leaves(params).items()}
    sampled = [p for p, flag in named_leaves(mask).items() if flag]
    posterior = exact_posterior(cfg, named, sampled, data)

    problem = Problem(frozen, jnp.asarray(data.x_train), jnp.asarray(data.y_train),
                      jnp.float32(cfg.likelihood.sigma), jnp.float32(cfg.prior.sigma))
    logdensity = make_logdensity_fn(static, make_likelihood(cfg.likelihood).log_likelihood)
    flat0, unravel = jax.flatten_util.ravel_pytree(position)
    assert flat0.size == posterior.mean.size

    def tempered(flat):
        return logdensity(unravel(flat), problem) / cfg.sampler.temperature

    hessian = np.asarray(jax.hessian(tempered)(jnp.asarray(posterior.mean, jnp.float32)))
    precision = np.linalg.inv(posterior.cov)
    np.testing.assert_allclose(-hessian, precision, atol=1e-4 * np.abs(precision).max())
    grad_at_mean = np.abs(np.asarray(jax.grad(tempered)(jnp.asarray(posterior.mean, jnp.float32))))
    grad_at_start = np.abs(np.asarray(jax.grad(tempered)(flat0)))
    assert grad_at_mean.max() < 1e-4 * grad_at_start.max()


def test_no_exact_reference_outside_the_linear_head():
    cfg = headbayes.compose(["+experiment=sin_head"])
    assert not_applicable_reason(cfg, ["output_layer.weight", "output_layer.bias"]) is None
    reason = not_applicable_reason(cfg, ["hidden_layers.1.bias", "output_layer.bias"])
    assert "hidden_layers.1.bias" in reason


def test_chain_distance_at_temperature_zero_is_not_a_number_without_warnings():
    """c21: the exact posterior at temperature 0 is a point; the z-score and variance ratio
    were inf with a raw RuntimeWarning (and Infinity in metrics.json)."""
    import warnings

    from headbayes.analysis.exact import ExactPosterior, chain_distance

    exact = ExactPosterior(["w"], np.zeros(2), np.zeros((2, 2)), None, None)
    chain = {"w": np.random.default_rng(0).normal(size=(1, 5, 2)).astype(np.float32)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        distance = chain_distance(exact, chain)
    assert all(np.isnan(v) for v in distance.values())
    exact = exact._replace(cov=np.eye(2))
    assert np.isfinite(list(chain_distance(exact, chain).values())).all()
