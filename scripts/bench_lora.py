"""`make bench-lora`: Bayesian LoRA adapters against the head only and every weight sampled.

The three runs share sin_lora's setting (the network pretrained on sin(πx), then 16 points of
the shifted task sin(πx + 0.8), 500 held-out points): its rank-2 adapters' B factors sampled;
the head only; every weight and bias of the pretrained network (no adapters). One table: held-out
NLL and 90% coverage, sampled numbers (and their share of the network's), R-hat, divergences
and wall time. Writes the `lora` section of docs/benchmarks.md (use --output - to print only).
"""

import argparse
import sys
import tempfile
from pathlib import Path

from headbayes.models.adapters import is_adapter_leaf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_runs import headbayes_run  # noqa: E402
from bench_sections import emit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUNS = {
    "LoRA adapters (B factors)": [],
    "head only": ["mask.include=[output_layer]", "adapters.targets=[]"],
    "every weight": ["mask.include=[hidden_layers,output_layer]", "adapters.targets=[]"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    lines = ["## Bayesian LoRA adapters (sin_lora)", "",
             "`python scripts/bench_lora.py` (`make bench-lora`); the machine of the other "
             "sections. Pretrained on sin(πx) (64 points), then 16 points of sin(πx + 0.8); "
             "held-out figures on 500 test points; NUTS (dense mass, target_accept 0.95), 4 "
             "chains × 2000 draws after 500 warmup steps.", "",
             "| sampled | numbers | share of the network | test_nll | test_coverage_90 | "
             "rhat_max | divergences | wall s |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, overrides) in enumerate(RUNS.items()):
            files = headbayes_run(["+experiment=sin_lora", *overrides], Path(tmp) / f"run{i}")
            metrics, meta, mask = files["metrics"], files["meta"], files["mask"]
            network = sum(leaf["size"] for leaf in mask["leaves"]
                          if not is_adapter_leaf(leaf["path"]))
            lines.append(
                f"| {name} | {mask['sampled_size']} | {mask['sampled_size'] / network:.0%} | "
                f"{metrics['test_nll']:.3f} | {metrics['test_coverage_90']:.3f} | "
                f"{metrics['rhat_max']:.3f} | {metrics['divergences']} | "
                f"{meta['timings']['wall_s']:.1f} |")
    emit("\n".join(lines), args.output, "lora")


if __name__ == "__main__":
    main()
