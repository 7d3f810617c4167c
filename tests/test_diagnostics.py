import re

import numpy as np
import pytest

from headbayes.report.diagnostics import ess_bulk, ess_tail, normal_quantile, rhat, verdict


@pytest.fixture
def iid():
    return np.random.default_rng(0).normal(size=(4, 1000, 6))


def figures_of(x):
    return {"rhat_max": float(np.max(rhat(x))), "ess_bulk_min": float(np.min(ess_bulk(x))),
            "ess_tail_min": float(np.min(ess_tail(x))), "divergences": 0,
            "all_finite": bool(np.isfinite(x).all())}


def test_independent_draws_raise_no_alarm(iid):
    assert verdict(figures_of(iid), num_chains=4) == []
    # ESS of independent draws is close to the number of draws
    assert np.all(np.abs(ess_bulk(iid) / 4000 - 1) < 0.15)


def test_stuck_chain_is_flagged(iid):
    stuck = iid.copy()
    stuck[2] = stuck[2, 0]
    warnings = verdict(figures_of(stuck), num_chains=4)
    assert any(w.startswith("R-hat") for w in warnings)
    # the figure and the bound it misses, in the same units (it read "128 < 100 per chain")
    assert any(re.fullmatch(r"bulk ESS [\d.]+ < 400 \(100 per chain, 4 chains\)", w)
               for w in warnings)


def test_shifted_chain_is_flagged(iid):
    shifted = iid.copy()
    shifted[1] += 0.5
    assert np.max(rhat(shifted)) > 1.01
    assert any(w.startswith("R-hat") for w in verdict(figures_of(shifted), num_chains=4))


def test_nan_chain_fails_the_verdict(iid):
    broken = iid.copy()
    broken[3, 10:, 2] = np.nan
    assert np.isnan(rhat(broken)[2]) and np.isnan(ess_bulk(broken)[2])
    warnings = verdict(figures_of(broken), num_chains=4)
    assert "non-finite values in the chain" in warnings
    assert any(w.startswith("R-hat nan") for w in warnings)


def test_divergences_fail_the_verdict(iid):
    figures = {**figures_of(iid), "divergences": 3}
    assert verdict(figures, num_chains=4) == ["3 divergent transitions"]


def test_ess_of_an_autoregressive_chain():
    """AR(1) with coefficient phi: ESS = N (1 - phi) / (1 + phi)."""
    rng = np.random.default_rng(1)
    phi, chains, draws = 0.8, 4, 5000
    x = np.zeros((chains, draws, 1))
    x[:, 0] = rng.normal(size=(chains, 1)) / np.sqrt(1 - phi**2)
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + rng.normal(size=(chains, 1))
    expected = chains * draws * (1 - phi) / (1 + phi)
    assert abs(ess_bulk(x)[0] / expected - 1) < 0.15


def test_average_ranks_match_scipy():
    from scipy.stats import rankdata

    from headbayes.report.diagnostics import _average_ranks

    rng = np.random.default_rng(3)
    ties = rng.integers(0, 5, size=200).astype(float)
    assert np.array_equal(_average_ranks(ties), rankdata(ties))
    distinct = rng.normal(size=200)
    assert np.array_equal(_average_ranks(distinct), rankdata(distinct))


def test_normal_quantile_matches_scipy_to_double_precision():
    from scipy.special import ndtri

    p = np.concatenate([np.logspace(-300, -1, 3000), np.linspace(0.001, 0.999, 10001),
                        1 - np.logspace(-16, -1, 1000)])  # both tails and the centre
    np.testing.assert_allclose(normal_quantile(p), ndtri(p), rtol=1e-14, atol=1e-300)


def test_the_report_imports_no_scipy():
    import subprocess
    import sys

    code = ("import sys, headbayes.report.write, headbayes.job.pipeline, headbayes.report.plots; "
            "print(any(m.split('.')[0] == 'scipy' for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
