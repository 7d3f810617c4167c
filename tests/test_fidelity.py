"""The seed experiment's figures (docs/architecture.md, "The seed experiment") for seeds 0, 1, 2,
run in-process."""

import pytest


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_seed_configuration_fidelity(run_in_process, seed):
    figures, _, _ = run_in_process("+experiment=sin_head", f"seed={seed}")
    assert figures["unmasked_var_max"] == 0.0
    assert 0.25 <= figures["rel_l2"] <= 0.60
    assert 0.15 <= figures["band_median"] <= 0.35
