"""Real data without hand-tuning: learned scales, the exact sampler, standard splits, file
tables, figures in the target's units."""

import json

import numpy as np
import pytest

import headbayes
from conftest import ROOT
from headbayes.config.typed import validate
from headbayes.core.errors import ConfigError
from headbayes.analysis.evidence import log_evidence, maximize_evidence, maximize_validation

YACHT = ROOT / "data" / "uci" / "yacht"


def _direct_log_evidence(jac, y, sigma, prior_sigma):
    """log N(y; 0, σ² I + s² J Jᵀ) by a dense determinant and solve."""
    cov = sigma**2 * np.eye(len(y)) + prior_sigma**2 * jac @ jac.T
    sign, logdet = np.linalg.slogdet(cov)
    return -0.5 * (logdet + y @ np.linalg.solve(cov, y) + len(y) * np.log(2 * np.pi))


def test_evidence_is_the_exact_log_marginal_and_its_maximum():
    rng = np.random.default_rng(0)
    jac = rng.normal(size=(40, 5))
    y = jac @ rng.normal(size=5) * 0.7 + 0.3 * rng.normal(size=40)
    found = maximize_evidence(jac.T @ jac, jac.T @ y, y @ y, len(y))
    sigma, s = found["likelihood_sigma"], found["prior_sigma"]
    best = _direct_log_evidence(jac, y, sigma, s)
    assert found["log_evidence"] == pytest.approx(best, rel=1e-9)
    for factor in (0.95, 1.05):  # a maximum in both scales
        assert _direct_log_evidence(jac, y, sigma * factor, s) < best
        assert _direct_log_evidence(jac, y, sigma, s * factor) < best
    lam, vectors = np.linalg.eigh(jac.T @ jac)  # any (σ, s), not only the maximum
    assert log_evidence(lam, vectors.T @ jac.T @ y, y @ y, len(y), 1 / 2.0**2, 1 / 0.5**2) \
        == pytest.approx(_direct_log_evidence(jac, y, 0.5, 2.0), rel=1e-9)
    fixed = maximize_evidence(jac.T @ jac, jac.T @ y, y @ y, len(y), sigma=0.5)
    assert fixed["likelihood_sigma"] == 0.5
    assert _direct_log_evidence(jac, y, 0.5, fixed["prior_sigma"] * 1.05) \
        < _direct_log_evidence(jac, y, 0.5, fixed["prior_sigma"])


def test_validation_sigma_finds_the_noise_of_held_out_rows():
    rng = np.random.default_rng(1)
    theta = rng.normal(size=8)
    jac, jac_val = rng.normal(size=(2000, 8)), rng.normal(size=(2000, 8))
    y = jac @ theta + 0.3 * rng.normal(size=2000)
    y_val = jac_val @ theta + 0.3 * rng.normal(size=2000)
    found = maximize_validation(jac.T @ jac, jac.T @ y, y @ y, len(y), jac_val, y_val)
    # sd of a noise-sd estimate from 2000 points: 0.3 / sqrt(2 * 2000) = 0.0047; 4 of them
    assert found["likelihood_sigma"] == pytest.approx(0.3, abs=4 * 0.3 / np.sqrt(4000))


def test_evidence_learns_sin_noise_and_exact_sampler_draws_the_exact_posterior(run_in_process):
    figures, _, run_dir = run_in_process(
        "+experiment=sin_head", "data.n_train=1000", "sampler=exact", "sampler.keep=2000",
        "likelihood.sigma=evidence", "prior.sigma=evidence", "likelihood.reduction=sum")
    assert figures["likelihood_sigma"] == pytest.approx(0.05, rel=0.10)  # true noise sd 0.05
    saved = json.loads((run_dir / "hyperparameters.json").read_text())
    assert saved["likelihood_sigma"] == figures["likelihood_sigma"]
    assert saved["prior_sigma"] == figures["prior_sigma"]
    # 2000 i.i.d. draws of 17 numbers: a mean's z is N(0, 1/2000), a variance ratio has sd
    # sqrt(2/1999); 4.5 sd covers the largest of 17 with room
    assert figures["mean_z_max"] < 4.5 / np.sqrt(2000)
    assert 1 - 4.5 * np.sqrt(2 / 1999) < figures["var_ratio_min"]
    assert figures["var_ratio_max"] < 1 + 4.5 * np.sqrt(2 / 1999)
    assert "R-hat" not in figures["verdict"]


@pytest.mark.parametrize("overrides, message", [
    (["mask=all", "sampler=exact"], "sampler=exact needs a closed-form posterior"),
    (["likelihood.sigma=evidence"], "needs `likelihood.reduction=sum`"),
    (["likelihood.sigma=evidence", "likelihood.reduction=sum", "body=pretrained"],
     "needs `body.weight_decay`"),
    (["prior.sigma=evidence", "likelihood.reduction=sum", "body=joint"],
     "needs a fixed body"),
    (["prior.sigma=validation"], "must be a number > 0 or evidence"),
    (["likelihood.sigma=guess"], "must be a number > 0 or one of evidence, validation"),
    (["prior.sigma=-1"], "`prior.sigma` must be a number in "),
])
def test_learned_scales_and_exact_sampler_refused_where_they_do_not_apply(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        validate(headbayes.compose(["+experiment=sin_head", *overrides]))


def _learn(*overrides):
    from headbayes.datasets import make_dataset
    from headbayes.analysis.exact import sampled_paths
    from headbayes.analysis.hyperparameters import learn
    from headbayes.models.mask import named_leaves
    from headbayes.job.plan import build_position

    cfg = headbayes.compose(["+experiment=sin_head", "likelihood.reduction=sum", *overrides])
    params = {p: np.asarray(v) for p, v in named_leaves(build_position(cfg)[0]).items()}
    return learn(validate(cfg), params, sampled_paths(cfg), make_dataset(cfg.data)), cfg, params


@pytest.mark.slow  # about 4-6 s: make test-all
def test_linearised_evidence_beyond_the_head_learns_the_noise():
    from headbayes.analysis.exact import design
    from headbayes.analysis.linearised import linearised_design

    found, cfg, params = _learn("mask=last_two", "data.n_train=1000",
                                "likelihood.sigma=evidence", "prior.sigma=evidence")
    assert found["likelihood_sigma"] == pytest.approx(0.05, rel=0.10)  # true noise sd 0.05
    head = ["output_layer.weight", "output_layer.bias"]  # linear: the linearisation is exact
    x = np.linspace(-1, 1, 7, dtype=np.float32)[:, None]
    for got, want in zip(linearised_design(cfg, params, head, x), design(cfg, params, head, x)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_a_jacobian_too_large_to_hold_is_refused():
    with pytest.raises(ConfigError, match="needs a Jacobian of"):
        _learn("mask=all", "model.width=1500", "data.n_train=1000", "prior.sigma=evidence")


def test_validation_sigma_without_validation_rows_is_refused(tmp_path):
    cfg = headbayes.compose(["+experiment=uci", f"data.root={YACHT}", "data.val_fraction=0",
                             "body.steps=50"])
    with pytest.raises(ConfigError, match="needs a validation part"):
        headbayes.run(cfg, run_dir=tmp_path / "run")


def test_uci_split_holds_the_standard_rows_in_original_units():
    from headbayes.datasets import make_dataset

    cfg = headbayes.compose(["data=uci", f"data.root={YACHT}", "data.split=3"])
    data = make_dataset(cfg.data)
    table = np.loadtxt(YACHT / "data.txt")
    train = np.loadtxt(YACHT / "index_train_3.txt", dtype=int)
    test = np.loadtxt(YACHT / "index_test_3.txt", dtype=int)
    assert len(data.x_train) == len(train) and len(data.x_test) == len(test)
    np.testing.assert_allclose(data.scaling.y_to_original(data.y_test)[:, 0], table[test, -1],
                               rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(data.y_train.mean(), 0, atol=1e-5)  # standardised by train rows
    assert data.inputs == tuple(f"x{j}" for j in range(6)) and data.target == "y6"
    with pytest.raises(ConfigError, match="data.split=99 beyond its splits"):
        make_dataset(headbayes.compose(["data=uci", f"data.root={YACHT}",
                                        "data.split=99"]).data)


def test_validation_part_is_carved_from_the_training_rows():
    from headbayes.datasets import make_dataset

    whole = make_dataset(headbayes.compose(["data=uci", f"data.root={YACHT}"]).data)
    carved = make_dataset(headbayes.compose(["data=uci", f"data.root={YACHT}",
                                             "data.val_fraction=0.25"]).data)
    assert len(carved.x_val) == round(0.25 * len(whole.x_train))
    assert len(carved.x_train) + len(carved.x_val) == len(whole.x_train)
    rows = {tuple(r) for r in np.concatenate([carved.x_train, carved.x_val])}
    assert rows == {tuple(r) for r in whole.x_train}
    np.testing.assert_array_equal(carved.x_test, whole.x_test)


def test_text_tables_whitespace_headerless_bom_semicolons_and_default_inputs(tmp_path):
    from headbayes.datasets import data_sizes, make_dataset

    rng = np.random.default_rng(0)
    values = rng.normal(size=(30, 4))
    plain = tmp_path / "plain.txt"
    plain.write_text("\n".join(" ".join(f"{v:.6f}" for v in row) for row in values) + "\n\n\n")
    cfg = headbayes.compose(["data=csv", f"data.path={plain}", "data.header=false",
                             "data.target=3", "data.standardize=false"])
    assert data_sizes(cfg.data) == (3, 1)
    data = make_dataset(cfg.data)
    assert data.inputs == ("0", "1", "2")
    got = np.concatenate([np.c_[data.x_train, data.y_train], np.c_[data.x_test, data.y_test]])
    np.testing.assert_allclose(np.sort(got, axis=0), np.sort(values, axis=0), atol=1e-6)

    excel = tmp_path / "excel.csv"
    excel.write_bytes(("\ufeffa;b;c;name\n" + "\n".join(";".join(f"{v:.6f}" for v in row[:3])
                                                         + ";hull" for row in values)
                       + "\n").encode())
    data = make_dataset(headbayes.compose(["data=csv", f"data.path={excel}", "data.target=c",
                                           "data.inputs=[a,b]"]).data)
    assert data.inputs == ("a", "b")  # the text column, unused, is not read

    test_file = tmp_path / "test.csv"
    test_file.write_text("a,b,c\n1,2,3\n4,5,6\n")
    data = make_dataset(headbayes.compose(["data=csv", f"data.path={excel}", "data.target=c",
                                           "data.inputs=[a,b]", f"data.test_path={test_file}",
                                           "data.standardize=false"]).data)
    assert len(data.x_train) == 30 and data.y_test[:, 0].tolist() == [3.0, 6.0]

    twice = tmp_path / "twice.csv"
    twice.write_text("a,a,c\n1,2,3\n")
    with pytest.raises(ConfigError, match=r"names the columns \['a'\] more than once"):
        make_dataset(headbayes.compose(["data=csv", f"data.path={twice}",
                                        "data.target=c"]).data)


def test_uci_experiment_reports_in_original_units(tmp_path):
    cfg = headbayes.compose(["+experiment=uci", f"data.root={YACHT}", "body.steps=3000",
                             "body.patience=100", "sampler.keep=300"])
    run = headbayes.run(cfg, run_dir=tmp_path / "run")
    figures, meta = run.metrics, run.meta
    scale = json.loads((tmp_path / "run" / "data.json").read_text())["y_scale"][0]
    assert figures["test_rmse"] == pytest.approx(figures["test_rmse_standardized"] * scale)
    assert figures["test_nll"] == pytest.approx(figures["test_nll_standardized"]
                                                + np.log(scale))
    assert figures["train_rmse"] > 0 and np.isfinite(figures["val_nll"])
    pretraining = meta["pretraining"]
    assert pretraining["steps"] < 3000  # stopped early: 100 steps without a better val loss
    assert pretraining["steps"] - pretraining["best_step"] == 100
    saved = json.loads((tmp_path / "run" / "hyperparameters.json").read_text())
    assert figures["likelihood_sigma"] == saved["likelihood_sigma"]
    # the predictive on the test rows, in original units, matches the report's test RMSE
    from headbayes.datasets import make_dataset

    data = make_dataset(cfg.data)
    x = data.scaling.x_shift + data.x_test * data.scaling.x_scale
    mean = run.predict(x)["mean"]
    rmse = np.sqrt(np.mean((mean - data.scaling.y_to_original(data.y_test)[:, 0]) ** 2))
    assert rmse == pytest.approx(figures["test_rmse"], rel=1e-3)


def test_verdict_skips_rhat_for_iid_draws_and_judges_the_fit():
    from headbayes.report.diagnostics import verdict
    from headbayes.report.figures import fit_warnings

    checks = {"all_finite": True, "rhat_max": 1.5, "ess_bulk_min": 1e4, "ess_tail_min": 1e4,
              "divergences": 0}
    assert any("R-hat" in w for w in verdict(checks, 4))
    assert verdict(checks, 4, iid=True) == []
    assert fit_warnings({"test_coverage_90": 0.9}, 0.3, 0.3) == []
    assert "outside [0.8, 0.97]" in fit_warnings({"test_coverage_90": 0.7}, 0.3, 0.3)[0]
    assert "residual sd" in fit_warnings({"test_coverage_90": 0.9}, 0.1, 0.3)[0]


def test_noise_priors_are_the_stated_densities_of_log_sigma():
    from scipy import stats

    from headbayes.posterior.noise import log_noise_prior

    cfg = headbayes.compose(["likelihood.sigma_prior_scale=0.7", "likelihood.sigma_prior_shape=3"])
    u = np.array([-2.0, -0.5, 0.4])
    half = np.asarray(log_noise_prior(cfg.likelihood)(u))
    want = stats.halfnorm.logpdf(np.exp(u), scale=0.7) + u  # density of u = log σ
    np.testing.assert_allclose(half - half[0], want - want[0], rtol=1e-6)
    inverse = headbayes.compose(["likelihood.sigma_prior=inverse_gamma",
                                 "likelihood.sigma_prior_scale=0.7",
                                 "likelihood.sigma_prior_shape=3"]).likelihood
    got = np.asarray(log_noise_prior(inverse)(u))
    want = stats.invgamma.logpdf(np.exp(2 * u), 3, scale=0.49) + np.log(2 * np.exp(2 * u))
    np.testing.assert_allclose(got - got[0], want - want[0], rtol=1e-6)


SAMPLED = ["+experiment=sin_head", "likelihood.sigma=sampled", "likelihood.reduction=sum",
           "prior.sigma=1.0", "data.n_train=64", "data.n_test=50"]


@pytest.mark.slow
def test_sampled_sigma_nuts_and_exact_draws_match_the_quadrature(run_in_process):
    from headbayes.datasets import make_dataset
    from headbayes.analysis.exact import design, noise_mixture
    from headbayes.posterior.noise import NOISE_LEAF

    exact_figures, _, exact_dir = run_in_process(*SAMPLED, "sampler=exact", "sampler.keep=4000",
                                                 name="exact")
    nuts_figures, _, nuts_dir = run_in_process(*SAMPLED, "sampler=nuts", "sampler.num_chains=2",
                                               "sampler.warmup=300", "sampler.keep=500",
                                               "sampler.thin=1", name="nuts")
    from headbayes.core.rundir import RunFiles

    cfg = headbayes.load_run(exact_dir).config
    data = make_dataset(cfg.data)
    values = RunFiles(exact_dir).read_params()
    head = ["output_layer.weight", "output_layer.bias"]
    jac, offset = design(cfg, values, head, data.x_train)
    mixture = noise_mixture(cfg, jac, data.y_train[:, 0].astype(np.float64) - offset)
    sigma = np.exp(mixture.log_sigma)
    mean = mixture.weights @ sigma
    sd = np.sqrt(mixture.weights @ sigma**2 - mean**2)
    for figures, run, ess in ((exact_figures, exact_dir, 4000),
                              (nuts_figures, nuts_dir, nuts_figures["ess_bulk_min"])):
        draws = np.exp(headbayes.load_run(run).draws(NOISE_LEAF))
        assert abs(draws.mean() - mean) < 4.5 * sd / np.sqrt(ess)
        assert figures["likelihood_sigma"] == pytest.approx(draws.mean(), rel=1e-6)
        assert figures["mean_z_max"] < 4.5 / np.sqrt(ess)  # the heads' mixture moments
        assert 1 - 4.5 * np.sqrt(2 / ess) < figures["var_ratio_min"]
        assert figures["var_ratio_max"] < 1 + 4.5 * np.sqrt(2 / ess)
    assert not any(word in nuts_figures["verdict"] for word in ("R-hat", "ESS", "divergent"))
    RunFiles(nuts_dir).write_status()  # run_in_process leaves that to the command
    predicted = headbayes.load_run(nuts_dir).predict(np.zeros((2, 1)))
    assert np.all(predicted["sd"] > predicted["sd_f"])  # σ of each draw adds to the spread


def test_sampled_sigma_refused_with_a_tempered_posterior():
    with pytest.raises(ConfigError, match="needs sampler.temperature=1"):
        validate(headbayes.compose([*SAMPLED, "sampler.temperature=2"]))
    with pytest.raises(ConfigError, match="needs `likelihood.reduction=sum`"):
        validate(headbayes.compose([*SAMPLED, "likelihood.reduction=mean"]))


def test_a_gap_split_holds_out_the_middle_third_of_one_input():
    """`data.gap=K`: the test rows are the middle third of the rows sorted by input K, so the
    held-out values of that input lie between the training rows' lower and upper thirds."""
    from headbayes.datasets import make_dataset
    from headbayes.datasets.uci import gap_split

    column = np.array([5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0, 4.0, 6.0, 0.0, 3.0])
    train, test = gap_split(column)
    assert sorted(column[test].tolist()) == [3.0, 3.0, 4.0]  # ranks 3..5 of 11 (stable)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(11))

    root = ROOT / "data" / "uci" / "yacht"
    cfg = headbayes.compose(["+experiment=uci", f"data.root={root}", "data.gap=5"])
    data = make_dataset(cfg.data)
    table = np.loadtxt(root / "data.txt")
    froude = table[:, 5]  # input 5 of yacht is column 5, the Froude number
    test_rows = data.rows["test"]  # the training rows: its train and validation parts
    train_rows = np.concatenate([data.rows["train"], data.rows.get("val", [])]).astype(int)
    assert len(test_rows) == len(table) // 3 and len(train_rows) == len(table) - len(test_rows)
    lower = froude[train_rows][froude[train_rows] <= np.median(froude)]
    upper = froude[train_rows][froude[train_rows] > np.median(froude)]
    assert lower.max() <= froude[test_rows].min() and froude[test_rows].max() <= upper.min()
    with pytest.raises(ConfigError, match="data.gap: 6 is beyond the 6 inputs"):
        make_dataset(headbayes.compose(["+experiment=uci", f"data.root={root}",
                                        "data.gap=6"]).data)
