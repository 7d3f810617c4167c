"""Prior families, fan-in scales, centres and per-group priors (`headbayes.posterior.priors`)."""

from pathlib import Path

import numpy as np
import pytest
import scipy.stats

import headbayes
from exact_check import assert_at_exact_posterior
from headbayes.config.saved import load_config
from headbayes.core import store
from headbayes.report.diagnostics import ess_bulk
from headbayes.core.errors import ConfigError
from headbayes.posterior.priors import (PRIORS, LeafPrior, PriorOptions, fan_in, leaf_priors,
                                        make_log_prior)
from headbayes.posterior.density import Problem

NUTS = ["sampler=nuts", "sampler.num_chains=4", "sampler.warmup=500", "sampler.keep=1000"]


def test_log_densities_match_scipy_up_to_a_constant():
    theta = np.linspace(-3.0, 4.0, 9, dtype=np.float32)
    problem = Problem(None, None, None, None, np.float32(2.0), 1.0, {"a": np.float32(0.5)})
    for family, reference in (("gaussian", scipy.stats.norm(0.5, 0.8)),
                              ("laplace", scipy.stats.laplace(0.5, 0.8)),
                              ("student_t", scipy.stats.t(4.0, 0.5, 0.8))):
        options = PRIORS.typed({"family": family, "df": 4.0}, strict=False)  # df: student_t's
        log_prior = make_log_prior({"a": LeafPrior(options, None, 0.4, True)})  # s = 0.4·2
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
    assert leaves["output_layer.weight"] == LeafPrior(cfg.prior, None, 0.25, False)
    assert leaves["output_layer.bias"] == LeafPrior(
        PriorOptions("laplace", 2.0, "fan_in", "zero"), 2.0, 0.25, False)


@pytest.mark.parametrize("family, variance", [
    pytest.param("laplace", 2.0, marks=pytest.mark.slow),
    pytest.param("student_t", 5 / 3, marks=pytest.mark.slow)])
def test_a_prior_dominated_posterior_is_the_prior(run_in_process, family, variance):
    """With a negligible likelihood (σ = 10⁴) the bias's posterior is its prior: Laplace(0, 1)
    has variance 2; Student-t with ν = 5, scale 1 has variance 5/3. Tolerance: 4 Monte-Carlo
    standard errors of the variance (from the bulk ESS of θ², using the fourth moment)."""
    _, _, run_dir = run_in_process(
        "+experiment=sin_head", *NUTS, "sampler.keep=4000", f"prior={family}", "prior.sigma=1",
        *(["prior.df=5"] if family == "student_t" else []), "likelihood.sigma=1e4",
        "likelihood.reduction=sum", "mask.include=[output_layer.bias]", name=family)
    theta = store.load_chain(run_dir)["output_layer.bias"].astype(np.float64)[..., 0]
    squares = theta**2
    mcse = squares.std(ddof=1) / np.sqrt(ess_bulk(squares[..., None])[0])
    assert abs(squares.mean() - variance) < 4 * mcse
    assert abs(theta.mean()) < 4 * theta.std() / np.sqrt(ess_bulk(theta[..., None])[0])


@pytest.mark.slow  # 4-5 s; `make test` stays under 5 minutes
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
    (["prior=student_t", "prior.df=0"], "`prior.df` must be a finite number > 0"),
    (["prior.df=5"], "prior 'gaussian' has no key prior.df; its keys: family, sigma, scale, "
                     "center$"),
    (["prior=laplace", "prior.df=5"], "prior 'laplace' has no key prior.df"),
    (["prior.family=student_t", "prior.df=5"], "`prior.df` is a key of prior student_t: choose "
     "that option with the config group, `prior=student_t`"),
    (["sampler.name=nuts", "sampler.target_accept=0.9"], "`sampler.target_accept` is a "
     "key of sampler nuts: choose that option with the config group, `sampler=nuts`"),
    (["sampler=gibbs", "+mask.groups={all: {include: [output_layer], sampler: {name: mala}, "
      "prior: {df: 5}}}"],
     "`mask.groups.all.prior` has no key df; its keys: family, sigma, scale, center$"),
    (["sampler=gibbs", "+mask.groups={all: {include: [output_layer], sampler: {name: mala}, "
      "prior: {family: cauchy}}}"], "`mask.groups.all.prior.family` must be one of gaussian, "
                                    "laplace, student_t"),
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


def test_a_student_t_group_takes_its_own_df_and_the_runs_other_keys():
    cfg = headbayes.compose(["+experiment=sin_gibbs", "prior.center=initial",
                             "+mask.groups.bias.prior={family: student_t, df: 5.0}"])
    from headbayes.models import leaf_shapes

    leaves = leaf_priors(cfg, leaf_shapes(cfg), ["output_layer.weight", "output_layer.bias"])
    bias = leaves["output_layer.bias"]
    assert (bias.options.family, bias.options.df, bias.options.center, bias.sigma) == \
        ("student_t", 5.0, "initial", None)
    assert not hasattr(leaves["output_layer.weight"].options, "df")


def test_a_family_registered_in_code_is_usable_by_name(tmp_path, monkeypatch):
    """A new family is one registry entry (its schema and log density) plus its
    configs/prior/NAME.yaml (here in the working directory's ./configs)."""
    import dataclasses

    import jax.numpy as jnp

    from headbayes.models import leaf_shapes

    @dataclasses.dataclass
    class PowerOptions(PriorOptions):
        family: str = "power"
        power: float = 1.5

    monkeypatch.setattr(PRIORS, "_entries", dict(PRIORS._entries))
    PRIORS.register("power", PowerOptions)(
        lambda options: lambda z: -jnp.sum(jnp.abs(z) ** options.power) / options.power)
    (tmp_path / "configs" / "prior").mkdir(parents=True)
    (tmp_path / "configs" / "prior" / "power.yaml").write_text("family: power\npower: 1.5\n")
    monkeypatch.chdir(tmp_path)
    cfg = headbayes.compose(["+experiment=sin_head", "prior=power", "prior.power=3.0",
                             "prior.sigma=2.0"])
    assert cfg.prior == PowerOptions("power", 2.0, "fixed", "zero", 3.0)
    leaves = leaf_priors(cfg, leaf_shapes(cfg), ["output_layer.bias"])
    problem = Problem(None, None, None, None, np.float32(2.0), 1.0, {})
    value = make_log_prior(leaves)({"output_layer.bias": np.array([4.0], np.float32)}, problem)
    assert float(value) == pytest.approx(-(2.0**3) / 3)  # z = 4 / 2
    assert headbayes.compose(["+experiment=sin_head", "prior.family=power"]).prior.power == 1.5
    with pytest.raises(ConfigError, match="prior 'power' has no key prior.df; its keys: family, "
                                          "sigma, scale, center, power"):
        headbayes.compose(["+experiment=sin_head", "prior=power", "prior.df=3"])


def test_every_prior_file_names_a_family_and_only_its_keys():
    import yaml

    import headbayes.configs

    files = sorted((Path(headbayes.configs.__file__).parent / "prior").glob("*.yaml"))
    assert [path.stem for path in files] == sorted(PRIORS.names())
    for path in files:
        values = yaml.safe_load(path.read_text())
        assert values["family"] == path.stem and set(values) <= set(PRIORS[path.stem].keys())


@pytest.mark.parametrize("group_prior", [{}, {"df": 5.0}])
def test_an_old_run_directory_with_the_flat_prior_keys_loads(tmp_path, group_prior):
    """run_config.json written when every prior had every key (`df` with a Gaussian prior, in
    the run's prior and in a group's): loaded with the family's keys only, as the same config."""
    import dataclasses
    import json

    from headbayes.config.typed import differences
    from headbayes.core.rundir import RunFiles

    overrides = ["+experiment=sin_gibbs",
                 "+mask.groups.bias.prior={family: laplace, sigma: 2.0}"]
    cfg = headbayes.compose(overrides)
    saved = dataclasses.asdict(cfg)
    saved["prior"] = {"family": "gaussian", "sigma": 0.3, "scale": "fixed", "center": "zero",
                      "df": 3.0}
    saved["mask"]["groups"]["bias"]["prior"] = {"family": "laplace", "sigma": 2.0,
                                                **group_prior}
    (tmp_path / "run_config.json").write_text(json.dumps(saved))
    loaded = load_config(RunFiles(tmp_path), own_data=False)
    assert loaded.prior == PriorOptions("gaussian", 0.3, "fixed", "zero") == cfg.prior
    assert differences(loaded, cfg) == []
    saved["prior"] = {"family": "student_t", "sigma": 0.3, "scale": "fixed", "center": "zero",
                      "df": 7.0}
    (tmp_path / "run_config.json").write_text(json.dumps(saved))
    assert load_config(RunFiles(tmp_path), own_data=False).prior.df == 7.0
