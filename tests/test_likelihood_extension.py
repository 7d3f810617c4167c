"""A regression likelihood is one registry entry: a Laplace-noise family defined here (its log
density for sampling, its `NoisePredictive` for the report) gets held-out figures, the MAP's
figures and `predict` summaries with no change to the report modules."""

import dataclasses
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest

import headbayes
from headbayes.core.normal import Z_95
from headbayes.posterior.likelihoods import LIKELIHOODS, Likelihood, NoisePredictive

B = 0.2  # the Laplace scale b: Var = 2 b², central 90% interval f ± b ln 10


@dataclass
class LaplaceOptions:
    name: str = "laplace_test"
    scale: float = B


def _laplace_log_likelihood(prediction, y, scale, data_scale=1.0):
    """Σ [−|y − f| / b − log b] (the constant dropped), times N/n for a minibatch."""
    import jax.numpy as jnp

    return -data_scale * jnp.sum(jnp.abs(y - prediction) / scale + jnp.log(scale))


def _laplace_loss(prediction, y):
    import jax.numpy as jnp

    return jnp.mean(jnp.abs(prediction - y))


LAPLACE_NOISE = NoisePredictive(
    logpdf=lambda f, y, b: -np.abs(y - f) / b - np.log(2 * b),
    replicate=lambda rng, f, b: f + b * rng.laplace(size=f.shape),
    variance=lambda b: 2 * b**2,
    covers_90=lambda f, y, b: np.abs(y - f) <= np.log(10) * b)


@pytest.fixture
def laplace(monkeypatch):
    """The family registered for this test only (the registry's entries restored after)."""
    monkeypatch.setattr(LIKELIHOODS, "_entries", dict(LIKELIHOODS._entries))
    LIKELIHOODS.register("laplace_test", LaplaceOptions, kind="regression",
                         model_outputs=lambda n: n, loss=_laplace_loss,
                         predictive=LAPLACE_NOISE)(
        lambda options: Likelihood(_laplace_log_likelihood, options.scale))
    return LaplaceOptions()


def _metric(*keys):
    from headbayes.report.figures import METRICS

    return next(m.compute for m in METRICS if set(keys) <= set(m.keys))


def test_heldout_figures_use_the_entrys_noise(laplace):
    """Function draws all equal to the truth t: the predictive is Laplace(t, b), so the NLL is
    mean(|y − t| / b + log 2b) and the central intervals cover their level."""
    from headbayes.report.figures import ReportContext

    rng = np.random.default_rng(3)
    n = 4000
    truth = rng.normal(size=(n, 1))
    y = truth + rng.laplace(scale=B, size=(n, 1))
    cfg = SimpleNamespace(likelihood=laplace, body=SimpleNamespace(mode="pretrained"))
    data = SimpleNamespace(y_test=y, x_test=np.zeros((n, 1)), scaling=None)
    ctx = ReportContext(cfg, data, params={}, chain={}, info={})
    ctx.__dict__.update(part_draws={"test": np.broadcast_to(truth, (1, 500, n, 1))},
                        map_test=truth)  # what the network would give
    residual = np.abs(y - truth)[:, 0]
    nll = np.mean(residual / B + np.log(2 * B))

    figures = _metric("test_nll", "coverage_90")(ctx)
    assert figures["test_nll"] == pytest.approx(nll, rel=1e-12)
    assert figures["test_rmse"] == pytest.approx(np.sqrt(np.mean(residual**2)), rel=1e-12)
    for level in (0.5, 0.8, 0.9, 0.95):  # binomial standard error sqrt(q (1 - q) / n)
        covered = figures[f"coverage_{round(level * 100)}"]
        assert abs(covered - level) < 4 * np.sqrt(level * (1 - level) / n)

    point = _metric("map_test_nll", "map_test_coverage_90")(ctx)
    assert point["map_test_nll"] == pytest.approx(nll, rel=1e-12)
    assert point["map_test_coverage_90"] == np.mean(residual <= np.log(10) * B)
    gaussian_90 = np.mean(residual <= Z_95 * B)  # a Gaussian reading would differ
    assert point["map_test_coverage_90"] != gaussian_90


@pytest.mark.slow  # 6 s: a short run, its report and `predict`; the test above: the figures
def test_a_run_with_the_family_reports_and_predicts(laplace, tmp_path, monkeypatch):
    monkeypatch.setenv("HEADBAYES_COMPILE_CACHE", "")  # no program kept for a test's family
    cfg = headbayes.compose(["+experiment=sin_head", "data.n_test=200", "sampler.warmup=60",
                             "sampler.keep=40", "report.plots=false"])
    run = headbayes.run(dataclasses.replace(cfg, likelihood=laplace), tmp_path / "run")
    metrics = run.metrics
    for key in ("test_nll", "test_rmse", "test_coverage_90", "coverage_50"):
        assert np.isfinite(metrics[key]), key
    assert "likelihood_sigma" not in metrics  # the family has no `sigma`

    predicted = run.predict(np.linspace(-1, 1, 7)[:, None])
    np.testing.assert_array_equal(predicted["mean"], predicted["mean_f"])
    # sd² = the function draws' variance + the noise's, 2 b² (sin data: y_scale 1)
    np.testing.assert_allclose(predicted["sd"] ** 2, predicted["sd_f"] ** 2 + 2 * B**2,
                               rtol=1e-10)
    assert np.all(predicted["q95"] - predicted["q05"] > predicted["q95_f"] - predicted["q05_f"])
