"""Golden hashes (`scripts/golden.py`): short runs of the shipped experiments give, byte for
byte, the chain parts, params.npz and metrics.json recorded in tests/golden.json. A
behaviour-preserving change keeps them; a change that moves a chain records them anew
(`python scripts/golden.py --write`) and says why in its commit."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

spec = importlib.util.spec_from_file_location("golden", ROOT / "scripts" / "golden.py")
golden = importlib.util.module_from_spec(spec)
spec.loader.exec_module(golden)

RECORDED = json.loads(golden.GOLDEN.read_text())
VARIANTS = json.loads(golden.VARIANTS.read_text()) if golden.VARIANTS.exists() else {}
QUICK = ("sin_head",)  # every case: make test-all


def test_every_case_is_recorded():
    assert set(RECORDED) == set(golden.CASES) and set(VARIANTS) <= set(golden.CASES)


@pytest.mark.parametrize("name", QUICK)
def test_golden_quick(name, tmp_path):
    assert golden.run_case(name, tmp_path) in golden.accepted(name, RECORDED, VARIANTS)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in golden.CASES if n not in QUICK])
def test_golden(name, tmp_path):
    assert golden.run_case(name, tmp_path) in golden.accepted(name, RECORDED, VARIANTS)
