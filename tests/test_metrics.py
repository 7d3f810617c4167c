import numpy as np

from headbayes.report.metrics import leaf_variances, predictive_summary, var_along_chain


def test_var_along_chain_is_draw_axis_variance_averaged():
    draws = np.zeros((2, 4, 3))
    draws[0, :, 0] = [0, 1, 2, 3]  # variance 1.25
    assert var_along_chain(draws) == 1.25 / 6


def test_frozen_leaves_are_compared_with_the_loops_end_values_bit_for_bit():
    params = {"w": np.float32([0.1, 1 / 3, -7.3]), "b": np.float32([0.2])}
    chain = {"b": np.random.default_rng(0).normal(size=(2, 400, 1)).astype(np.float32)}
    same = leaf_variances(params, chain, {"w": params["w"].copy()})
    assert same["unmasked_var_max"] == 0.0 and same["masked_var_min"] > 0.5
    one_ulp = np.nextafter(params["w"], np.float32(1))  # the smallest change a float32 allows
    moved = leaf_variances(params, chain, {"w": one_ulp})["unmasked_var_max"]
    assert moved > 0.0
    assert np.isnan(leaf_variances(params, chain, {})["unmasked_var_max"])  # a leaf missing
    assert leaf_variances(params, chain, None)["unmasked_var_max"] is None  # nothing kept


def test_predictive_summary_known_values():
    draws = np.arange(100.0).reshape(1, 100, 1, 1) * np.ones((1, 1, 3, 1))
    truth = np.full((3, 1), 49.5)
    s = predictive_summary(draws, truth)
    assert s["rel_l2"] == 0.0
    np.testing.assert_allclose(s["band_median"], np.quantile(np.arange(100.0), 0.95)
                               - np.quantile(np.arange(100.0), 0.05))
    assert s["band_max"] == s["band_median"]
