"""The statistical check shared by the tests that sample the seed's head exactly."""

import numpy as np

from headbayes.core import store
from headbayes.report.diagnostics import ess_bulk


def assert_at_exact_posterior(run_dir, figures: dict, extras: dict) -> None:
    """Every |chain mean - exact mean| / MCSE < 4 (MCSE from the bulk ESS), variance ratios in
    [0.85, 1.15], no divergence."""
    exact = extras["exact"]
    chain = store.load_chain(run_dir)
    draws = np.concatenate([chain[p].reshape(chain[p].shape[:2] + (-1,)) for p in exact.paths],
                           axis=2).astype(np.float64)
    pooled = draws.reshape(-1, draws.shape[2])
    mcse = pooled.std(axis=0, ddof=1) / np.sqrt(ess_bulk(draws))
    assert np.all(np.abs(pooled.mean(axis=0) - exact.mean) / mcse < 4)
    assert 0.85 <= figures["var_ratio_min"] and figures["var_ratio_max"] <= 1.15
    assert figures["divergences"] == 0
