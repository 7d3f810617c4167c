"""`make bench`: mask groups (sampler=gibbs) against their single-group parts, in one run.

(m) Gibbs overhead: the steady-state seconds per sweep of `sin_gibbs` (weights by NUTS, bias
    by MALA) against the sum of the seconds per step of NUTS on the weights alone (bias frozen)
    and MALA on the bias alone (weights frozen), same likelihood, prior, chains and settings.
    Each run samples SAMPLING_STEPS steps; per step = meta.json `timings.stages.sampling` / steps,
    the best of `--repeats` runs. The frozen block's value does not change the other block's
    conditional covariance (a Gaussian), so each single-group step does the same work as in the
    sweep.
(n) Sampling efficiency on sin_gibbs's posterior: sin_gibbs against single-group NUTS on the
    whole head (dense mass): bulk ESS (the minimum over the 17 numbers) per gradient
    evaluation of the sampling phase, with the exact-distance figures.
(o) The Gibbs examples of docs/patterns.md: sin_gibbs and sin_gibbs_seed as shipped.
Writes the `gibbs` section of docs/benchmarks.md (use --output - to print only).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sections import emit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLING_STEPS = 20000
POSTERIOR = ["likelihood.sigma=0.5", "likelihood.reduction=sum", "prior.sigma=0.3"]
CHAINS = ["sampler.num_chains=4", "sampler.init_jitter=0.1", "sampler.warmup=500",
          "sampler.thin=1"]
STEADY = {
    "gibbs sweep (weights NUTS + bias MALA)": ["+experiment=sin_gibbs"],
    "NUTS step, weights only": ["+experiment=sin_head", "sampler=nuts", *POSTERIOR,
                                "mask.include=[output_layer.weight]", *CHAINS],
    "MALA step, bias only": ["+experiment=sin_head", "sampler=mala", *POSTERIOR,
                             "mask.include=[output_layer.bias]", "sampler.step_size=0.01",
                             *CHAINS],
}
EFFICIENCY = {
    "sin_gibbs (weights NUTS + bias MALA)": ["+experiment=sin_gibbs"],
    "NUTS on the whole head": ["+experiment=sin_head", "sampler=nuts", *POSTERIOR, *CHAINS,
                               "sampler.mass_matrix=dense", "sampler.keep=2000"],
}


def run(overrides: list[str], tmp: str) -> tuple[dict, dict]:
    """(meta.json, metrics.json) of `headbayes run OVERRIDES` (plots off)."""
    run_dir = Path(tmp) / f"run{len(list(Path(tmp).iterdir()))}"
    env = {**os.environ, "HEADBAYES_OUTPUT_DIR": tmp}
    result = subprocess.run([sys.executable, "-m", "headbayes", "run", *overrides,
                             "report.plots=false", f"hydra.run.dir={run_dir}"],
                            cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:  # a warning verdict still exits 0
        raise RuntimeError(f"headbayes run {' '.join(overrides)} exited {result.returncode}: "
                           f"{result.stderr[-2000:]}")
    return (json.loads((run_dir / "meta.json").read_text()),
            json.loads((run_dir / "metrics.json").read_text()))


def per_step(overrides: list[str], tmp: str, repeats: int) -> float:
    seconds = []
    for _ in range(repeats):
        meta, _ = run([*overrides, f"sampler.keep={SAMPLING_STEPS}"], tmp)
        seconds.append(meta["timings"]["stages"]["sampling"] / SAMPLING_STEPS)
    return min(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    lines = ["## Mask groups (Gibbs)", "",
             "`python scripts/bench_gibbs.py` (part of `make bench`); the machine of the other "
             "sections.", ""]
    with tempfile.TemporaryDirectory() as tmp:
        steps = {name: per_step(o, tmp, args.repeats) for name, o in STEADY.items()}
        sweep, *parts = steps.values()
        lines += [f"(m) Seconds per step, {SAMPLING_STEPS} sampling steps of 4 chains, best of "
                  f"{args.repeats}:", "", "| program | ms per step |", "|---|---:|"]
        lines += [f"| {name} | {1e3 * s:.3f} |" for name, s in steps.items()]
        lines += ["", f"One sweep costs **{sweep / sum(parts):.2f}×** the sum of the two "
                  f"single-group steps (target ≤ 1.2×).", ""]
        lines += ["(n) Bulk ESS per gradient evaluation on sin_gibbs's posterior:", "",
                  "| run | ess_bulk_min | grad evals (sampling) | ESS per 1000 grad evals | "
                  "mean_z_max | var_ratio_min | var_ratio_max |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for name, overrides in EFFICIENCY.items():
            meta, m = run(overrides, tmp)
            evals = meta["counts"]["grad_evals_sampling"]
            lines.append(f"| {name} | {m['ess_bulk_min']:.0f} | {evals} | "
                         f"{1e3 * m['ess_bulk_min'] / evals:.2f} | {m['mean_z_max']:.3f} | "
                         f"{m['var_ratio_min']:.3f} | {m['var_ratio_max']:.3f} |")
        lines += ["", "(o) The shipped Gibbs experiments (`dependence`: the bias's conditional "
                  "sd given the weights over its marginal sd, exact posterior):", "",
                  "| experiment | bias dependence | mean_z_max | var_ratio_min | var_ratio_max "
                  "| rhat_max | verdict |", "|---|---:|---:|---:|---:|---:|---|"]
        for name in ("sin_gibbs", "sin_gibbs_seed"):
            _, m = run([f"+experiment={name}"], tmp)
            verdict = "ok" if m["verdict"] == "ok" else "WARN: " + m["verdict"]
            lines.append(f"| {name} | {m['groups']['bias']['dependence']:.4f} | "
                         f"{m['mean_z_max']:.3f} | {m['var_ratio_min']:.3f} | "
                         f"{m['var_ratio_max']:.3f} | {m['rhat_max']:.3f} | {verdict} |")
    emit("\n".join(lines), args.output, "gibbs")


if __name__ == "__main__":
    main()
