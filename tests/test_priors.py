"""Prior families, fan-in scales, centres and per-group priors (`headbayes.posterior.priors`)."""

import numpy as np
import pytest
import scipy.stats

import headbayes
from exact_check import assert_at_exact_posterior
from headbayes.config.saved import load_config
from headbayes.core import store
from headbayes.report.diagnostics import ess_bulk
from headbayes.core.errors import ConfigError
from headbayes.posterior.priors import LeafPrior, fan_in, leaf_priors, make_log_prior
from headbayes.posterior.density import Problem

NUTS = ["sampler=nuts", "sampler.num_chains=4", "sampler.warmup=500", "sampler.keep=1000"]


def test_log_densities_match_scipy_up_to_a_constant():
    theta = np.linspace(-3.0, 4.0, 9, dtype=np.float32)
    problem = Problem(None, None, None, None, np.float32(2.0), 1.0, {"a": np.float32(0.5)})
    for family, reference in (("gaussian", scipy.stats.norm(0.5, 0.8)),
                              ("laplace", scipy.stats.laplace(0.5, 0.8)),
                              ("student_t", scipy.stats.t(4.0, 0.5, 0.8))):
        log_prior = make_log_prior({"a": LeafPrior(family, 4.0, None, 0.4, True)})  # s = 0.4·2
        ours = np.array([float(log_prior({"a": t}, problem)) for t in theta])
        theirs = reference.logpdf(theta.astype(np.float64))
        np.testing.assert_allclose(ours - ours[0], theirs - theirs[0], rtol=1e-5, atol=1e-5)


def test_fan_in_and_group_priors_per_leaf():
    cfg = headbayes.compose(["+experiment=sin_gibbs", "prior.scale=fan_in",
                             "+mask.groups.bias.prior={family: laplace, sigma: 2.0}"])
    from headbayes.models import leaf_shapes

    shapes = leaf_shapes(cfg)
    assert [fan_in(p, shapes) for p in ("hidden_layers.0.weight", "hidden_layers.0.bias",
                                        "hidden_layers.1.weight", "output_layer.bias")] == \
        [1, 1, 16, 16]
    leaves = leaf_priors(cfg, shapes, ["output_layer.weight", "output_layer.bias"])
    assert leaves["output_layer.weight"] == LeafPrior("gaussian", 3.0, None, 0.25, False)
    assert leaves["output_layer.bias"] == LeafPrior("laplace", 3.0, 2.0, 0.25, False)


@pytest.mark.parametrize("family, variance", [
    ("laplace", 2.0), pytest.param("student_t", 5 / 3, marks=pytest.mark.slow)])
def test_a_prior_dominated_posterior_is_the_prior(run_in_process, family, variance):
    """With a negligible likelihood (σ = 10⁴) the bias's posterior is its prior: Laplace(0, 1)
    has variance 2; Student-t with ν = 5, scale 1 has variance 5/3. Tolerance: 4 Monte-Carlo
    standard errors of the variance (from the bulk ESS of θ², using the fourth moment)."""
    _, _, run_dir = run_in_process(
        "+experiment=sin_head", *NUTS, "sampler.keep=4000", f"prior={family}", "prior.sigma=1",
        "prior.df=5", "likelihood.sigma=1e4", "likelihood.reduction=sum",
        "mask.include=[output_layer.bias]", name=family)
    theta = store.load_chain(run_dir)["output_layer.bias"].astype(np.float64)[..., 0]
    squares = theta**2
    mcse = squares.std(ddof=1) / np.sqrt(ess_bulk(squares[..., None])[0])
    assert abs(squares.mean() - variance) < 4 * mcse
    assert abs(theta.mean()) < 4 * theta.std() / np.sqrt(ess_bulk(theta[..., None])[0])


def test_fan_in_scales_and_initial_centre_keep_the_exact_reference(run_in_process):
    figures, extras, run_dir = run_in_process(
        "+experiment=sin_head", *NUTS, "sampler.mass_matrix=dense", "prior.scale=fan_in",
        "prior.center=initial", "prior.sigma=1", name="centred")
    assert_at_exact_posterior(run_dir, figures, extras)
    # the closed form, written out here: centre = params.npz's head, sd = 1/√16 for all 17
    from headbayes.datasets import make_dataset
    from headbayes.analysis.exact import design
    from headbayes.core.rundir import RunFiles

    files = RunFiles(run_dir)
    cfg, params = load_config(files, learned=True), files.read_params()
    sampled = ["output_layer.weight", "output_layer.bias"]
    data = make_dataset(cfg.data)
    jac, offset = design(cfg, params, sampled, data.x_train)
    centre = np.concatenate([params[p].reshape(-1) for p in sampled]).astype(np.float64)
    a = 2.0 / len(data.y_train) / 0.05**2  # reduction mean, σ 0.05
    precision = a * jac.T @ jac + 16 * np.eye(17)
    mean = np.linalg.solve(precision, a * jac.T @ (data.y_train.reshape(-1) - offset)
                           + 16 * centre)
    np.testing.assert_allclose(extras["exact"].mean, mean, rtol=1e-6, atol=1e-8)


@pytest.mark.slow  # 7 s; the group's prior goes through the same leaf_priors as fan_in's
def test_a_group_prior_changes_only_its_group(run_in_process):
    figures, extras, run_dir = run_in_process(
        "+experiment=sin_gibbs", "+mask.groups.bias.prior={sigma: 0.05}", name="group")
    assert_at_exact_posterior(run_dir, figures, extras)
    cov = extras["exact"].cov  # the bias's prior sd 0.05 caps its posterior sd
    assert np.sqrt(cov[16, 16]) < 0.05


@pytest.mark.parametrize("overrides, message", [
    (["prior.family=cauchy"], "`prior.family` must be one of gaussian, laplace, student_t"),
    (["prior.scale=layer"], "`prior.scale` must be one of fixed, fan_in"),
    (["prior.df=0"], "`prior.df`"),
    (["prior=laplace", "prior.sigma=evidence", "likelihood.reduction=sum"],
     "learns the scales under the plain prior"),
    (["sampler=gibbs", "+mask.groups={all: {include: [output_layer], sampler: {name: mala}, "
      "prior: {centre: initial}}}"], "`mask.groups.all.prior` has no key centre"),
    (["sampler=gibbs", "+mask.groups={all: {include: [output_layer], sampler: {name: mala}, "
      "prior: {sigma: evidence}}}"], "must be a number"),
])
def test_bad_priors_exit_2_before_compiling(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        headbayes.compose(["+experiment=sin_head", *overrides])
