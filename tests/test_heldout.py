"""Held-out metrics against closed forms, and the body modes end to end."""

import json

import numpy as np
import pytest

import headbayes
from headbayes.core import store
from headbayes.report.metrics import band_gap_ratio, coverage, heldout


def test_coverage_of_the_true_predictive_is_nominal():
    """Function draws all equal to the truth: the predictive is N(truth, sigma^2)."""
    rng = np.random.default_rng(1)
    n, sigma = 4000, 0.3
    truth = rng.normal(size=(n, 1))
    y = truth + sigma * rng.normal(size=(n, 1))
    f_draws = np.broadcast_to(truth, (1, 500, n, 1))
    covered = coverage(f_draws, y, sigma, (0.5, 0.9))
    for level, value in covered.items():  # binomial standard error sqrt(q (1 - q) / n)
        assert abs(value - level) < 4 * np.sqrt(level * (1 - level) / n)


def test_nll_and_rmse_closed_form():
    f_draws = np.zeros((1, 3, 2, 1))
    y = np.array([[1.0], [-2.0]])
    figures, calibration = heldout(f_draws, y, sigma=2.0)
    assert calibration[0.9] == figures["test_coverage_90"]
    expected_nll = np.mean(0.5 * (y[:, 0] / 2.0) ** 2 + np.log(2.0) + 0.5 * np.log(2 * np.pi))
    assert figures["test_nll"] == pytest.approx(expected_nll)
    assert figures["test_rmse"] == pytest.approx(np.sqrt(2.5))


def test_band_gap_ratio():
    x = np.linspace(-1, 1, 11)[:, None]
    width = np.where(np.abs(x) < 0.3, 2.0, 0.5)
    summary = {"lo": -width / 2, "hi": width / 2}
    assert band_gap_ratio(summary, x, (-0.3, 0.3)) == pytest.approx(4.0)


@pytest.mark.slow  # about 4-6 s: make test-all
def test_pretraining_lowers_the_loss_and_freezes_the_trained_body(run_in_process):
    figures, _, run_dir = run_in_process(
        "+experiment=sin_head", "body=pretrained", "body.steps=500", "sampler=laplace",
        "sampler.warmup=100", "sampler.keep=50")
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["pretraining"]["loss_final"] < 0.2 * meta["pretraining"]["loss_initial"]
    params = store.read_npz(run_dir / "params.npz")
    from headbayes.models.mask import named_leaves
    from headbayes.job.plan import build_position

    initial = named_leaves(build_position(headbayes.compose(["+experiment=sin_head"]))[0])
    assert not np.array_equal(params["hidden_layers.1.weight"], initial["hidden_layers.1.weight"])
    assert figures["unmasked_var_max"] == 0.0  # the trained body stays put while sampling


@pytest.mark.slow
def test_sin_head_pretrained_targets(run_in_process):
    figures, _, _ = run_in_process("+experiment=sin_head_pretrained")
    assert figures["rel_l2"] <= 0.05
    assert figures["truth_coverage_90"] >= 0.9
    # the chains mix (no R-hat, ESS or divergence warning); the seed's `reduction: mean`
    # tempers the posterior, so its predictive over-covers and the fit check says so, and its
    # held-out NLL is worse than the MAP network's (judged with the same σ)
    assert figures["test_coverage_90"] > 0.97
    coverage, worse = figures["verdict"].split("; ", 1)
    assert coverage == f"test_coverage_90 {figures['test_coverage_90']:.3f} outside [0.8, 0.97]"
    assert worse.startswith(f"held-out NLL {figures['test_nll']:.4g} is worse than the MAP "
                            f"network's {figures['map_test_nll']:.4g}")


@pytest.mark.slow
def test_gap_head_band_widens_in_the_gap(run_in_process):
    figures, _, _ = run_in_process("+experiment=gap_head", "sampler.keep=500")
    assert figures["band_gap_ratio"] > 1


def _body_change(run_dir) -> float:
    from headbayes.models.mask import named_leaves
    from headbayes.job.plan import build_position

    initial = named_leaves(build_position(headbayes.compose(["+experiment=sin_head"]))[0])
    params = store.read_npz(run_dir / "params.npz")
    return max(float(np.max(np.abs(params[p] - np.asarray(initial[p]))))
               for p in params if not p.startswith("output_layer"))


@pytest.mark.parametrize("lr,moves", [(1e-2, True), (1e-9, False)])
def test_joint_changes_the_body_through_the_optimiser_only(run_in_process, lr, moves):
    """The body moves with the optax step (lr 1e-2) and not with the sampler: with a vanishing
    learning rate it stays put while the head is sampled."""
    figures, _, run_dir = run_in_process(
        "+experiment=sin_head", "body=joint", "body.steps=200", f"body.lr={lr}",
        "sampler.step_size=1e-4", "sampler.num_chains=2", "sampler.warmup=50",
        "sampler.keep=50", name=f"joint-{lr}")
    change = _body_change(run_dir)
    assert (change > 1e-3) if moves else (change < 1e-6)
    assert figures["unmasked_var_max"] == 0.0 and figures["masked_var_min"] > 0
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["counts"]["grad_evals_joint"] == 200 * 2
