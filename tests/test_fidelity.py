"""The seed experiment's figures (DESIGN.md §4) for seeds 0, 1, 2, run in-process."""

import pytest
from omegaconf import OmegaConf

from headbayes import cli
from headbayes.pipeline import run_job
from headbayes.report import compute_report


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_seed_configuration_fidelity(tmp_path, seed):
    cfg = cli._compose(["+experiment=sin_head", f"seed={seed}"])
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(OmegaConf.structured(cfg), tmp_path / ".hydra" / "config.yaml")
    run_job(cfg, tmp_path, progress=lambda *a: None)
    figures, _ = compute_report(tmp_path)
    assert figures["unmasked_var_max"] == 0.0
    assert 0.25 <= figures["rel_l2"] <= 0.60
    assert 0.15 <= figures["band_median"] <= 0.35
