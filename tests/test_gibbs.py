"""Mask groups (sampler=gibbs): each group's own sampler, conditioned on the others; mixed
VI + MCMC. The seed's linear head has an exact Gaussian posterior, so every split of it is
checked against that posterior (or, for the mixed split, against its exact conditional)."""

import numpy as np
import pytest

import headbayes
from exact_check import assert_at_exact_posterior
from headbayes.core import store
from headbayes.core.errors import ConfigError


def _schur_sd_ratio(cov: np.ndarray, i: int) -> float:
    """Conditional sd of number i given all others over its marginal sd (Schur complement)."""
    rest = [j for j in range(cov.shape[0]) if j != i]
    conditional = cov[i, i] - cov[i, rest] @ np.linalg.solve(cov[np.ix_(rest, rest)], cov[rest, i])
    return float(np.sqrt(conditional / cov[i, i]))


@pytest.mark.slow  # about 4-6 s: make test-all
def test_weights_by_nuts_and_bias_by_mala_reach_the_exact_posterior(run_in_process):
    figures, extras, run_dir = run_in_process("+experiment=sin_gibbs", name="gibbs")
    assert_at_exact_posterior(run_dir, figures, extras)
    assert figures["verdict"] == "ok"
    weights, bias = figures["groups"]["weights"], figures["groups"]["bias"]
    assert (weights["sampler"], weights["numbers"], bias["sampler"], bias["numbers"]) == \
        ("nuts", 16, "mala", 1)
    assert bias["grad_evals_per_sweep"] == 2.0  # MALA's step plus the refreshed gradient
    assert weights["grad_evals_per_sweep"] >= 2.0 and weights["divergences"] == 0
    assert 0.3 < bias["accept_mean"] < 1.0  # MALA rejects some proposals: a real MH step
    exact = extras["exact"]  # the bias is the last number (paths: weight, bias)
    assert exact.paths == ["output_layer.weight", "output_layer.bias"]
    assert bias["dependence"] == pytest.approx(_schur_sd_ratio(exact.cov, 16), rel=1e-6)
    assert 0.35 < bias["dependence"] < 0.5  # the moderately dependent split the issue names
    _, info = store.load_chain_and_info(run_dir)
    assert info["bias.steps"].shape == (4, 2000) and np.all(info["bias.steps"] == 1)
    assert np.all(info["grad_evals"] == info["weights.grad_evals"] + info["bias.grad_evals"])


@pytest.mark.slow  # 8 s; scripts/bench_gibbs.py shows the same figures
def test_the_seed_split_is_shown_failing_not_hidden(run_in_process):
    """On the seed's likelihood the bias barely moves given the weights: the same number of
    sweeps leaves its variance far too small, and the verdict says so."""
    figures, _, _ = run_in_process("+experiment=sin_gibbs_seed", name="seed")
    assert figures["groups"]["bias"]["dependence"] < 0.01
    assert figures["var_ratio_min"] < 0.5
    assert figures["verdict"] != "ok" and "R-hat" in figures["verdict"]


def _bias_by(sampler: str) -> list:
    """sin_gibbs with the bias group fitted by `sampler` (refit to every sweep's conditional)."""
    return ["+experiment=sin_gibbs", "~mask.groups.bias.sampler",
            f"+mask.groups.bias.sampler={{name: {sampler}, learning_rate: 0.01}}",
            "sampler.keep=1000"]


@pytest.mark.slow
def test_mixed_laplace_and_nuts_reach_the_exact_posterior(run_in_process):
    """The bias's conditional given the weights is Gaussian, so Laplace refit at every sweep
    draws it exactly and the Gibbs chain must reach the exact posterior."""
    figures, extras, run_dir = run_in_process(*_bias_by("laplace"), name="laplace")
    assert_at_exact_posterior(run_dir, figures, extras)
    bias = figures["groups"]["bias"]
    assert bias["sampler"] == "laplace" and bias["accept_mean"] == 1.0


@pytest.mark.slow  # 6 s; the Laplace test above checks the mixed scheme exactly
def test_mixed_vi_and_nuts_come_close_to_the_exact_posterior(run_in_process):
    """Mean-field VI on the 1-number bias is exact at its optimum, but REFIT_STEPS Adam steps
    per sweep trail a conditional that moves every sweep: the chain lands near the exact
    posterior, not on it. Bounds: means within 0.5 posterior sd, variances within 40%."""
    figures, _, _ = run_in_process(*_bias_by("vi"), name="vi")
    assert figures["groups"]["bias"]["sampler"] == "vi"
    assert figures["mean_z_max"] < 0.5
    assert 0.6 < figures["var_ratio_min"] and figures["var_ratio_max"] < 1.4


@pytest.mark.parametrize("overrides, message", [
    (["mask.groups.bias.include=[output_layer]"],
     "disjoint: 'output_layer.weight' is in both 'weights' and 'bias'"),
    (["~mask.groups.bias"], "sampled leaves in no mask group: output_layer.bias"),
    (["mask.groups.bias.include=[hidden_layers.0.bias]"],
     "selects 'hidden_layers.0.bias', which the mask leaves frozen"),
    (["sampler=nuts"], "needs sampler=gibbs, got sampler=nuts"),
    (["mask.groups.bias.sampler.name=exact"], "in mask.groups.bias: sampler 'exact' has no key"),
    (["~mask.groups.bias.sampler", "+mask.groups.bias.sampler={name: gibbs}"],
     "a single sampler other than gibbs and exact"),
    (["+mask.groups.bias.sampler.keep=3"], "sets keep, which every group shares"),
    (["mask.groups.bias.sampler.stepsize=3"], "did you mean sampler.step_size"),
    (["mask.groups.bias.sampler.step_size=-1"], "in mask.groups.bias: `sampler.step_size`"),
    (["+mask.groups.bias.colour=red"], "`mask.groups.bias` has no key colour"),
    (["mask.groups.bias.sampler=mala"], "`mask.groups.bias.sampler` must be a mapping"),
    (["+mask.groups.b-x={include: [output_layer.bias]}"], "mask group names are letters"),
    (["likelihood.sigma=sampled"], "not available with sampler=gibbs"),
])
def test_bad_groups_are_refused_before_anything_compiles(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        headbayes.compose(["+experiment=sin_gibbs", *overrides])


def test_gibbs_without_groups_exits_2(headbayes):
    result = headbayes("inspect", "+experiment=sin_head", "sampler=gibbs")
    assert result.returncode == 2 and "sampler=gibbs needs mask.groups" in result.stderr


def test_inspect_names_each_leafs_group(headbayes):
    out = headbayes("inspect", "+experiment=sin_gibbs", check_code=0).stdout
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if "│" in line}
    assert "sampled (weights)" in rows["output_layer.weight"]
    assert "sampled (bias)" in rows["output_layer.bias"]
    assert "frozen" in rows["hidden_layers.0.bias"]


@pytest.mark.slow  # 20 s: three processes; make test resumes bit for bit in test_trust
def test_a_stopped_gibbs_run_resumes_to_the_same_chain(headbayes, tmp_path):
    """SIGTERM mid-run, `headbayes resume`: every group's sampler state (NUTS adaptation,
    MALA's cached gradient) is in the checkpoint, so the chain equals an uninterrupted one."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    long = ["+experiment=sin_gibbs", "sampler.warmup=10000", "sampler.keep=200",
            "report.plots=false"]
    headbayes("run", *long, f"hydra.run.dir={tmp_path / 'reference'}", check_code=0)
    stopped = tmp_path / "stopped"
    env = {**os.environ, "HEADBAYES_OUTPUT_DIR": str(tmp_path / "outputs")}
    proc = subprocess.Popen([sys.executable, "-m", "headbayes", "run", *long,
                             f"hydra.run.dir={stopped}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:  # past the step-0 commit: a chunk of sweeps is committed
        try:
            if json.loads((stopped / store.MANIFEST).read_text())["checkpoint"]["next_step"]:
                break
        except (OSError, ValueError, KeyError, TypeError):
            pass
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait() == 143
    headbayes("resume", stopped, check_code=0)
    assert 0 < json.loads((stopped / "meta.json").read_text())["resumed_from_step"] < 10200
    expected, got = store.load_chain(tmp_path / "reference"), store.load_chain(stopped)
    for path in expected:
        np.testing.assert_array_equal(got[path], expected[path])


@pytest.mark.slow  # 4-5 s; `make test` stays under 5 minutes
def test_a_minibatch_group_reads_the_data_not_the_heads_statistics(run_in_process):
    """A group with SGLD minibatches needs the data points: the sufficient statistics that
    replace them for a full-batch linear head must not be used then (they cannot be indexed
    by point)."""
    figures, _, run_dir = run_in_process(
        "+experiment=sin_gibbs", "~mask.groups.bias.sampler",
        "+mask.groups.bias.sampler={name: sgld, step_size: 1e-4, batch_size: 8}",
        "sampler.warmup=300", "sampler.keep=5", name="minibatch")
    assert figures["groups"]["bias"]["sampler"] == "sgld"
    assert np.isfinite(store.load_chain(run_dir)["output_layer.bias"]).all()
