"""The physics likelihood: operators, the pde data, the exact reference, sampled coefficients."""

import json
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import headbayes
from exact_check import assert_at_exact_posterior
from headbayes.core.errors import ConfigError, RunDirError
from headbayes.datasets import make_dataset
from headbayes.analysis.exact import exact_posterior, not_applicable_reason
from headbayes.job.plan import build_position
from headbayes.models.mask import named_leaves
from headbayes.posterior.density import Problem, plain_log_prior
from headbayes.posterior.operators import (FORCING, OPERATORS, VALUE, forcing_values,
                                           operator_of)
from headbayes.posterior.physics import physics_logdensity_fn, predicted_terms
from run_edits import rerecord

SMALL = ["+experiment=poisson_bpinn", "model.width=12", "body.steps=400", "data.eval_points=41"]


def _sin3_second(x):
    """d²/dx² sin³(6x) = 216 sin(6x) cos²(6x) − 108 sin³(6x)."""
    s, c = np.sin(6 * x), np.cos(6 * x)
    return 216 * s * c**2 - 108 * s**3


def test_forcing_of_the_builtin_operators_matches_their_formulas():
    from headbayes.posterior.operators import SOLUTIONS

    x = np.linspace(-0.7, 0.7, 9)[:, None]
    u = np.sin(6 * x[:, 0]) ** 3
    sin3 = SOLUTIONS["sin3"][0]
    np.testing.assert_allclose(forcing_values(OPERATORS["poisson1d"], sin3, {"lam": 0.01}, x),
                               0.01 * _sin3_second(x[:, 0]), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        forcing_values(OPERATORS["nonlinear_poisson1d"], sin3, {"lam": 0.01, "k": 0.7}, x),
        0.01 * _sin3_second(x[:, 0]) + 0.7 * np.tanh(u), rtol=1e-10, atol=1e-12)
    p = np.array([[0.3, -0.2], [0.5, 0.5], [-0.9, 0.1]])
    v = np.sin(np.pi * p[:, 0]) * np.sin(np.pi * p[:, 1])
    np.testing.assert_allclose(
        forcing_values(OPERATORS["allen_cahn2d"], SOLUTIONS["sin_pi_xy"][0], {"lam": 0.01}, p),
        0.01 * (-2 * np.pi**2 * v) + v * (v**2 - 1), rtol=1e-10, atol=1e-12)


def test_pde_data_holds_forcing_rows_then_values_with_their_terms():
    cfg = headbayes.compose(["+experiment=nonlinear_poisson_inverse", "data.noise_f=0",
                             "data.noise_u=0", "likelihood.sigma_f=0.01",
                             "likelihood.sigma_u=0.01"])
    data = make_dataset(cfg.data)
    terms = data.y_train[:, 1]
    assert list(terms) == [FORCING] * 32 + [VALUE] * 8
    x = data.x_train[:, 0].astype(np.float64)
    assert x[32] == np.float32(-0.7) and x[33] == np.float32(0.7)  # the boundary, then 6 interior sensors
    assert np.all((x[34:] > -0.7) & (x[34:] < 0.7))
    np.testing.assert_allclose(data.y_train[32:, 0], np.sin(6 * x[32:]) ** 3, atol=1e-6)
    np.testing.assert_allclose(data.f_eval[:, 0], np.sin(6 * data.x_eval[:, 0]) ** 3, atol=1e-6)
    noisy = make_dataset(headbayes.compose(["+experiment=nonlinear_poisson_inverse"]).data)
    again = make_dataset(headbayes.compose(["+experiment=nonlinear_poisson_inverse"]).data)
    np.testing.assert_array_equal(noisy.y_train, again.y_train)
    residual = noisy.y_train[:, 0] - data.y_train[:, 0]
    assert 0.003 < residual.std() < 0.03  # noise sd 0.01 on 40 rows


def test_predicted_terms_are_the_operator_by_finite_differences():
    cfg = headbayes.compose(SMALL)
    params, static, _ = build_position(cfg)
    model = eqx.combine(params, static)
    x = jnp.linspace(-0.6, 0.6, 7)[:, None]
    y = jnp.stack([jnp.zeros(7), jnp.array([FORCING] * 6 + [VALUE])], axis=1)
    terms = np.asarray(predicted_terms(model, x, y, OPERATORS["poisson1d"], {"lam": 0.01}))
    with jax.enable_x64(True):
        m64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64) if eqx.is_array(a) else a,
                           model)
        h = 1e-4
        xs = np.asarray(x, np.float64)
        u = lambda v: np.asarray(m64(jnp.asarray(v)))[:, 0]  # noqa: E731
        second = (u(xs + h) - 2 * u(xs) + u(xs - h)) / h**2
        np.testing.assert_allclose(terms[:6], 0.01 * second[:6], rtol=2e-3, atol=1e-5)
        np.testing.assert_allclose(terms[6], u(xs)[6], rtol=1e-5)


def test_exact_physics_posterior_is_the_log_density_s_mode_and_curvature():
    cfg = headbayes.compose([*SMALL, "body=frozen", "model.depth=1", "model.width=8"])
    params, static, mask = build_position(cfg)
    position, frozen = eqx.partition(params, mask)
    data = make_dataset(cfg.data)
    named = {k: np.asarray(v) for k, v in named_leaves(params).items()}
    sampled = [p for p, flag in named_leaves(mask).items() if flag]
    assert not_applicable_reason(cfg, sampled) is None
    posterior = exact_posterior(cfg, named, sampled, data)
    problem = Problem(frozen, jnp.asarray(data.x_train), jnp.asarray(data.y_train),
                      jnp.float32(1.0), jnp.float32(cfg.prior.sigma))
    logdensity = physics_logdensity_fn(static, cfg.likelihood, plain_log_prior)
    with jax.enable_x64(True):
        to64 = lambda t: jax.tree.map(  # noqa: E731
            lambda a: jnp.asarray(a, jnp.float64) if eqx.is_array(a) else a, t)
        problem64 = to64(problem)
        flat0, unravel = jax.flatten_util.ravel_pytree(to64(position))
        density = lambda flat: logdensity(unravel(flat), problem64)  # noqa: E731
        mean = jnp.asarray(posterior.mean, jnp.float64)
        precision = np.linalg.inv(posterior.cov)
        np.testing.assert_allclose(-np.asarray(jax.jit(jax.hessian(density))(mean)),
                                   precision, rtol=1e-6, atol=1e-6 * np.abs(precision).max())
        gradient = jax.jit(jax.grad(density))
        at_mean = np.abs(np.asarray(gradient(mean))).max()
        assert at_mean < 1e-6 * np.abs(np.asarray(gradient(flat0))).max()


def test_nonlinear_operator_and_sampled_coefficients_have_no_exact_reference():
    cfg = headbayes.compose(["+experiment=nonlinear_poisson_inverse", "mask=head"])
    assert "not linear" in not_applicable_reason(cfg, ["output_layer.weight"])
    cfg = headbayes.compose([*SMALL, "+likelihood.unknown={lam: {mean: 0.0, sd: 1.0}}"])
    assert "coefficients are sampled" in not_applicable_reason(cfg, ["output_layer.weight"])


@pytest.fixture(scope="module")
def head_run(tmp_path_factory):
    """Exact draws of the linear head of a small PINN body (poisson_bpinn)."""
    run_dir = tmp_path_factory.mktemp("physics") / "head"
    cfg = headbayes.compose([*SMALL, "sampler=exact",
                             "sampler.keep=500"])
    return headbayes.run(cfg, run_dir)


@pytest.mark.slow
def test_nuts_on_a_pinn_head_reaches_the_exact_posterior(tmp_path):
    from headbayes.report.write import compute_report

    cfg = headbayes.compose([*SMALL, "sampler.warmup=300", "sampler.keep=500",
                             "report.plots=false"])
    run = headbayes.run(cfg, tmp_path / "nuts")
    figures, extras = compute_report(run.path)
    assert_at_exact_posterior(run.path, figures, extras)
    assert 0 <= figures["truth_within_2sd"] <= 1
    exact = extras["exact"]
    within = np.abs(extras["data"].f_eval - exact.f_mean) <= 2 * exact.f_sd
    # the chain's band agrees with the exact one: the fractions differ by the points whose
    # truth lies near the band's edge
    assert abs(figures["truth_within_2sd"] - within.mean()) < 0.1


def test_saved_physics_run_reports_and_predicts_as_it_ran(head_run, headbayes):
    assert (head_run.path / "predictive.png").is_file()
    again = headbayes("report", head_run.path, check_code=0)
    assert json.loads((head_run.path / "metrics.json").read_text())["mean_z_max"] == \
        head_run.metrics["mean_z_max"], again.stdout
    from headbayes.report.write import compute_report

    figures, extras = compute_report(head_run.path)
    exact = extras["exact"]
    x = extras["data"].x_eval[::10]
    predicted = head_run.predict(x)
    # the chain's mean of u(x) is the exact one's within 5 Monte-Carlo standard errors
    error = np.abs(predicted["mean"] - exact.f_mean[::10, 0])
    assert np.all(error <= 5 * exact.f_sd[::10, 0] / np.sqrt(figures["ess_bulk_min"]))


def test_the_report_s_residual_is_the_operator_of_the_draw_minus_the_true_forcing(head_run):
    from headbayes.report.physics import pde_residuals

    cfg = head_run.config
    params = {k: np.asarray(v) for k, v in np.load(head_run.path / "params.npz").items()}
    draw = {p: params[p][None, None] for p in ("output_layer.weight", "output_layer.bias")}
    x = np.linspace(-0.6, 0.6, 13)[:, None]
    residual = pde_residuals(cfg, params, draw, draw, x)
    assert residual.shape == (1, 13)
    with jax.enable_x64(True):
        from headbayes.models.skeleton import model_with

        model = model_with(cfg, params, np.float64)
        u = lambda v: np.asarray(model(jnp.asarray(v)))[:, 0]  # noqa: E731
        h = 1e-4
        second = (u(x + h) - 2 * u(x) + u(x - h)) / h**2
    expected = 0.01 * second - 0.01 * _sin3_second(x[:, 0])
    np.testing.assert_allclose(residual[0], expected, rtol=2e-3, atol=2e-4)
    assert (head_run.path / "physics.png").is_file()
    assert head_run.metrics["pde_residual_rms"] > 0


def test_a_saved_config_naming_a_user_operator_is_refused_without_code(head_run, tmp_path):
    import shutil

    from headbayes.config.saved import load_config
    from headbayes.core.rundir import RunFiles

    copy = tmp_path / "copy"
    shutil.copytree(head_run.path, copy)
    config = json.loads((copy / "run_config.json").read_text())
    config["data"]["operator"] = "planted.op"
    (copy / "run_config.json").write_text(json.dumps(config))
    (tmp_path / "planted.py").write_text("raise SystemExit('planted code ran')\n")
    rerecord(copy)
    with pytest.raises((ConfigError, RunDirError), match="data.operator 'planted.op'"):
        load_config(RunFiles(copy))
    assert "planted" not in sys.modules


def test_a_user_operator_by_name_gives_the_builtin_s_exact_posterior(tmp_path, monkeypatch):
    (tmp_path / "myops.py").write_text(
        "import jax\n\n\ndef poisson(u, x, c):\n    return c['lam'] * jax.hessian(u)(x)[0, 0]\n"
        "\n\npoisson.linear = True\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "myops", raising=False)
    assert operator_of("myops.poisson").linear
    posteriors = []
    for name in ("poisson1d", "myops.poisson"):
        cfg = headbayes.compose([*SMALL, "body=frozen", f"data.operator={name}"])
        params, static, mask = build_position(cfg)
        named = {k: np.asarray(v) for k, v in named_leaves(params).items()}
        sampled = [p for p, flag in named_leaves(mask).items() if flag]
        posteriors.append(exact_posterior(cfg, named, sampled, make_dataset(cfg.data)))
    np.testing.assert_allclose(posteriors[1].mean, posteriors[0].mean, rtol=1e-9)


def test_a_user_function_that_fails_is_refused_before_compiling(refused_run, tmp_path):
    (tmp_path / "badops.py").write_text(
        "import jax\nimport numpy as np\n\n\ndef two(u, x, c):\n"
        "    return jax.numpy.stack([u(x), u(x)])\n\n\ndef host(u, x, c):\n"
        "    return np.asarray(u(x))\n\n\ndef nan(x):\n    return x[0] * jax.numpy.nan\n"
        "\n\ndef lie(u, x, c):\n    return u(x) ** 2\n\n\nlie.linear = True\n")
    (tmp_path / "inner.py").write_text("import no_such_package_xyz\n")
    for override, message in (("data.operator=badops.two", "must return one number a point"),
                              ("data.operator=badops.host", "TracerArrayConversionError"),
                              ("data.solution=badops.nan", "must return finite numbers"),
                              ("data.operator=badops.np", "is a module, not a function"),
                              ("data.operator=badops.lie", "says linear = True, but"),
                              ("data.operator=inner.op", "failed while importing")):
        sys.modules.pop("badops", None)
        sys.modules.pop("inner", None)
        result = refused_run(*SMALL, override, cwd=tmp_path)
        assert result.returncode == 2 and message in result.stderr, result.stderr


def test_coefficients_are_added_dropped_and_set_from_the_command_line():
    cfg = headbayes.compose(["+experiment=poisson_bpinn", "+data.coefficients.kappa=0.02",
                             "~data.coefficients.lam", "data.operator=poisson1d",
                             "+data.coefficients.lam=0.03"])
    assert cfg.data.coefficients == {"kappa": 0.02, "lam": 0.03}
    assert cfg.likelihood.coefficients == cfg.data.coefficients
    cfg = headbayes.compose(["+experiment=nonlinear_poisson_inverse",
                             "likelihood.unknown.k.sd=0.5",
                             "+likelihood.unknown.lam={mean: 0.01, sd: 0.1}"])
    assert cfg.likelihood.unknown == {"k": {"mean": 0.0, "sd": 0.5},
                                      "lam": {"mean": 0.01, "sd": 0.1}}
    assert headbayes.compose([*SMALL, "sampler=exact"]).sampler.name == "exact"


def test_a_sampled_sd_is_fixed_in_pretraining_and_sampled_after(tmp_path):
    from headbayes.posterior.physics import coefficient_log_prior

    cfg = headbayes.compose([*SMALL, "likelihood.sigma_f=sampled", "body.weight_decay=null"])
    assert float(coefficient_log_prior({}, cfg.likelihood)) == 0.0  # pretraining's values
    u = np.log(0.5)
    expected = -0.5**2 / 2 + u  # half-normal, c = 1, with the Jacobian
    assert np.isclose(float(coefficient_log_prior({"log_sigma_f": u}, cfg.likelihood)),
                      expected)


def test_a_run_with_a_user_operator_reports_again_from_its_record(tmp_path, monkeypatch,
                                                                   request):
    (tmp_path / "myops2.py").write_text(
        "import jax\n\n\ndef poisson(u, x, c):\n    return c['lam'] * jax.hessian(u)(x)[0, 0]"
        "\n\n\npoisson.linear = True\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "myops2", raising=False)
    cfg = headbayes.compose([*SMALL, "body=frozen", "data.operator=myops2.poisson",
                             "sampler=exact", "sampler.keep=200", "report.plots=false"])
    run = headbayes.run(cfg, tmp_path / "run")
    record = json.loads((run.path / "model_source.json").read_text())
    assert record["functions"]["data.operator"]["module"] == "myops2"
    command = request.getfixturevalue("headbayes")  # the CLI, as conftest runs it
    command("report", run.path, cwd=tmp_path, check_code=0)
    (tmp_path / "myops2.py").write_text((tmp_path / "myops2.py").read_text() + "# edited\n")
    again = command("report", run.path, cwd=tmp_path)
    assert again.returncode == 2 and "is not the source the run was made with" in again.stderr


@pytest.mark.parametrize("overrides, message", [
    (["likelihood=physics"], "needs data=pde"),
    ([*SMALL, "+likelihood.unknown={q: {mean: 0.0, sd: 1.0}}"], "has no coefficient q"),
    ([*SMALL, "+likelihood.unknown={lam: {mean: 0.0}}"], "likelihood.unknown.lam"),
    ([*SMALL, "data.operator=nonlinear_poisson1d"], "needs data.coefficients.k"),
    ([*SMALL, "data.operator=allen_cahn2d"], "works on 2-D points"),
    ([*SMALL, "data.operator=poisson"], "must be one of poisson1d"),
    ([*SMALL, "data.operator=nosuchmodule.op"], "cannot import module 'nosuchmodule'"),
    ([*SMALL, "body=joint"], "frozen or pretrained"),
    ([*SMALL, "likelihood.sigma_f=0"], "likelihood.sigma_f"),
    ([*SMALL, "data.boundary=3"], "data.boundary"),
    ([*SMALL, "data.dimension=2"], "the built-in solution works on 1-D points"),
    ([*SMALL, "+likelihood.unknown.k=3"], "likelihood.unknown.k"),
])
def test_bad_physics_configs_exit_2_before_compiling(refused_run, overrides, message):
    result = refused_run(*overrides)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr


def test_log_density_with_a_coefficient_and_a_sampled_sd_is_the_formula():
    """The log density over (bias, k, log σ_u) against numpy: the residuals, σ_u's normaliser,
    the priors N(0, 1) of the bias and of k, and σ_u's half-normal prior with its Jacobian."""
    from headbayes.posterior.physics import WithCoefficients, coefficient_leaves, start_position
    from headbayes.posterior.position import chain_leaves, named_position

    cfg = headbayes.compose(["+experiment=nonlinear_poisson_inverse", "model.width=6",
                             "mask.include=[output_layer.bias]", "likelihood.sigma_u=sampled",
                             "likelihood.sigma_prior_scale=0.1", "data.sensors=4"])
    assert list(coefficient_leaves(cfg.likelihood)) == ["likelihood.k",
                                                        "likelihood.log_sigma_u"]
    assert list(chain_leaves(cfg))[-2:] == ["likelihood.k", "likelihood.log_sigma_u"]
    params, static, mask = build_position(cfg)
    position, frozen = eqx.partition(params, mask)
    start = start_position(position, cfg.likelihood, {"k": 0.5, "sigma_u": 0.2})
    assert float(start.coefficients["k"]) == 0.5
    assert np.isclose(float(start.coefficients["log_sigma_u"]), np.log(0.2))
    data = make_dataset(cfg.data)
    problem = Problem(frozen, jnp.asarray(data.x_train), jnp.asarray(data.y_train),
                      jnp.float32(1.0), jnp.float32(1.0))
    density = jax.jit(physics_logdensity_fn(static, cfg.likelihood, plain_log_prior))
    model = eqx.combine(params, static)
    g = np.asarray(jax.vmap(lambda p: model(p)[0])(jnp.asarray(data.x_train)), np.float64)
    g2 = np.asarray(jax.vmap(lambda p: jax.hessian(lambda q: model(q)[0])(p)[0, 0])(
        jnp.asarray(data.x_train)), np.float64)
    y, forcing = data.y_train[:, 0].astype(np.float64), data.y_train[:, 1] == FORCING
    b0 = float(params.output_layer.bias[0])
    for b, k, s in [(0.0, 0.7, 0.05), (0.3, -0.2, 0.5)]:
        moved = eqx.tree_at(lambda t: t.output_layer.bias, position, jnp.array([b], jnp.float32))
        at = WithCoefficients(moved, {"k": jnp.float32(k), "log_sigma_u": jnp.float32(np.log(s))})
        assert set(named_position(at)) == {"output_layer.bias", "likelihood.k",
                                           "likelihood.log_sigma_u"}
        u = g - b0 + b
        f = 0.01 * g2 + k * np.tanh(u)
        expected = (-0.5 * np.sum(((f - y)[forcing] / 0.01) ** 2)
                    - 0.5 * np.sum(((u - y)[~forcing] / s) ** 2) - (~forcing).sum() * np.log(s)
                    - 0.5 * b**2 - 0.5 * k**2 - s**2 / (2 * 0.1**2) + np.log(s))
        np.testing.assert_allclose(float(density(at, problem)), expected, rtol=2e-4)


def _grid_moments(log_density, axes: list) -> list[tuple[float, float]]:
    """(mean, sd) of each axis under exp(log_density) on the product grid of `axes`."""
    weights = np.exp(log_density - log_density.max())
    weights /= weights.sum()
    mesh = np.meshgrid(*axes, indexing="ij")
    moments = []
    for values in mesh:
        mean = float((weights * values).sum())
        moments.append((mean, float(np.sqrt((weights * (values - mean) ** 2).sum()))))
    return moments


@pytest.mark.slow
def test_sampled_coefficient_and_noise_sd_match_quadrature(tmp_path):
    """The head's bias, k and σ_u sampled by NUTS on a pretrained body against the same
    posterior by quadrature on a 3-D grid (the forcing terms depend on the bias through
    tanh(u)); pretraining fitted k from its prior mean 0 towards the truth 0.7."""
    from headbayes.models.skeleton import model_with
    from headbayes.report.diagnostics import ess_bulk

    cfg = headbayes.compose(["+experiment=nonlinear_poisson_inverse", "model.width=8",
                             "model.depth=1", "body.steps=600", "data.eval_points=21",
                             "mask.include=[output_layer.bias]", "likelihood.sigma_u=sampled",
                             "likelihood.sigma_prior_scale=0.1", "data.sensors=12",
                             "sampler=nuts", "~sampler.num_integration_steps",
                             "sampler.warmup=200", "sampler.keep=500", "report.plots=false"])
    run = headbayes.run(cfg, tmp_path / "inverse")
    meta = json.loads((run.path / "meta.json").read_text())
    assert abs(meta["pretraining"]["coefficients"]["k"] - 0.7) < 0.7  # nearer than its start 0
    assert set(meta["pretraining"]["sigma"]) == {"sigma_u"}

    data = make_dataset(cfg.data)
    params = {k: np.asarray(v, np.float64) for k, v in np.load(run.path / "params.npz").items()}
    with jax.enable_x64(True):
        model = model_with(cfg, params, np.float64)
        u = lambda p: model(p)[0]  # noqa: E731
        x = jnp.asarray(data.x_train, jnp.float64)
        g = np.asarray(jax.vmap(u)(x)) - params["output_layer.bias"][0]  # the body's part
        g2 = np.asarray(jax.vmap(lambda p: jax.hessian(u)(p)[0, 0])(x))
    y, forcing = data.y_train[:, 0].astype(np.float64), data.y_train[:, 1] == FORCING
    chain = run.draws()
    draws = [np.asarray(chain[k], np.float64).reshape(chain[k].shape[:2]) for k in
             ("output_layer.bias", "likelihood.k", "likelihood.log_sigma_u")]
    axes = [np.linspace(d.mean() - 7 * d.std(), d.mean() + 7 * d.std(), 61) for d in draws]
    b, k, log_s = (a[..., None] for a in np.meshgrid(*axes, indexing="ij"))
    f = 0.01 * g2[forcing] + k * np.tanh(g[forcing] + b)
    density = (-0.5 * (((f - y[forcing]) / 0.01) ** 2).sum(-1)
               - 0.5 * (((g[~forcing] + b - y[~forcing]) / np.exp(log_s)) ** 2).sum(-1)
               - (~forcing).sum() * log_s[..., 0]
               - 0.5 * b[..., 0] ** 2 - 0.5 * k[..., 0] ** 2  # priors N(0, 1)
               - np.exp(2 * log_s[..., 0]) / (2 * 0.1**2) + log_s[..., 0])
    for values, (mean, sd) in zip(draws, _grid_moments(density, axes)):
        ess = ess_bulk(values[..., None])[0]
        assert abs(values.mean() - mean) < 4 * values.std() / np.sqrt(ess), (values.mean(), mean)
        assert abs(values.std() / sd - 1) < 5 / np.sqrt(2 * ess), (values.std(), sd)
    sigma = run.metrics["coefficients"]["sigma_u"]
    np.testing.assert_allclose(sigma["mean"], np.exp(draws[2]).mean(), rtol=1e-6)


def test_a_sweep_table_takes_coefficient_figures_as_metrics_not_overrides():
    from headbayes.report.summarize import checked_metrics, table_columns

    rows = [{"job": 0, "seed": 0, "coefficients.k.mean": 0.70},
            {"job": 1, "seed": 1, "coefficients.k.mean": 0.71}]
    assert table_columns(rows)[:2] == ["job", "seed"]
    assert "coefficients.k.mean" not in table_columns(rows)
    assert checked_metrics("coefficients.k.mean", rows) == ["coefficients.k.mean"]
