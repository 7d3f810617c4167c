"""`make bench-pinn`: the B-PINN problems with three masks side by side -> docs/pinn.md.

For each experiment of Yang, Meng and Karniadakis (2021) that headbayes ships
(`poisson_bpinn` §3.2.1, `nonlinear_poisson_inverse` §3.3.1 at noise 0.01 and 0.1,
`allen_cahn_bpinn` §3.2.3 at noise 0.01), the same deterministic PINN body (the experiment's
pretraining) is followed by a posterior over
- `head`: the linear output layer (51 numbers; NUTS, dense mass matrix),
- `last_two`: the last hidden layer and the head (2,601 numbers),
- `all`: every weight (2,701 numbers in 1-D),
the last two with HMC (20 leapfrog steps a draw, diagonal mass matrix), each with 2 chains of
200 warmup and 200 kept draws (every weight's gradient costs 3.5 ms a chain on Allen–Cahn's
600 rows); the inverse problem samples k with them. The table gives the
fraction of eval points whose truth lies within the posterior mean ± 2 sd, the median width of
the 90% band, the rel-L2 error of the mean, k (posterior mean ± sd; the plain PINN's k is the
pretraining's), the largest R-hat over every sampled number, and the wall time of the run
(pretraining, sampling and report, through the Python API in one process; the first run of
each structure includes compilation). Then the shipped `poisson_bpinn` as it is (NUTS on the
head, 4 chains of 500 draws) at both noise levels, against its exact posterior.

    python scripts/bench_pinn.py [--output docs/pinn.md] [--quick]
"""

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DRAWS = ["sampler.num_chains=2", "sampler.warmup=200", "sampler.keep=200",
         "report.plots=false"]
SHIPPED = ["report.plots=false"]  # the experiment's own 4 chains of 500 draws
MASKS = {
    "head": ["mask=head", "sampler=nuts", "sampler.mass_matrix=dense"],
    "last_two": ["mask=last_two", "sampler=hmc", "sampler.num_integration_steps=20",
                 "sampler.mass_matrix=diagonal"],
    "all": ["mask=all", "sampler=hmc", "sampler.num_integration_steps=20",
            "sampler.mass_matrix=diagonal"],
}
CASES = [  # (experiment, noise)
    ("poisson_bpinn", 0.01), ("poisson_bpinn", 0.1),
    ("nonlinear_poisson_inverse", 0.01), ("nonlinear_poisson_inverse", 0.1),
    ("allen_cahn_bpinn", 0.01),
]
# Yang et al. 2021, Table 1 (B-PINN-HMC over all weights; the plain PINN's k)
PAPER_K = {0.01: "0.705 ± 0.006 (PINN 0.705)", 0.1: "0.665 ± 0.056 (PINN 0.591)"}


def run_case(experiment: str, noise: float, mask: str, folder: Path,
             draws: list = DRAWS) -> dict:
    import headbayes

    overrides = [f"+experiment={experiment}", f"data.noise_f={noise}", f"data.noise_u={noise}",
                 *MASKS[mask], *draws]
    if mask == "head" and experiment == "nonlinear_poisson_inverse":  # its sampler is HMC
        overrides.append("~sampler.num_integration_steps")
    cfg = headbayes.compose(overrides)
    started = time.perf_counter()
    run = headbayes.run(cfg, folder / f"{experiment}-{noise}-{mask}-{len(draws)}")
    seconds = time.perf_counter() - started
    figures = run.metrics
    meta = json.loads((run.path / "meta.json").read_text())
    return {"experiment": experiment, "noise": noise, "mask": mask, "seconds": seconds,
            "numbers": sum(int(v[0, 0].size) for k, v in run.draws().items()
                           if not k.startswith("likelihood.")),
            "within": figures["truth_within_2sd"], "band": figures["band_median"],
            "rel_l2": figures["rel_l2"], "rhat": figures["rhat_max"],
            "ess": figures["ess_bulk_min"],
            "draws": f"{cfg.sampler.num_chains} chains of {cfg.sampler.keep} draws",
            "k": figures.get("coefficients", {}).get("k"),
            "pinn_k": meta.get("pretraining", {}).get("coefficients", {}).get("k"),
            "mean_z_max": figures.get("mean_z_max"),
            "var_ratio": (figures.get("var_ratio_min"), figures.get("var_ratio_max"))}


def table(rows: list[dict]) -> str:
    lines = ["| experiment | noise | mask | sampled numbers | truth within 2 sd | 90% band "
             "(median) | rel-L2 | k (mean ± sd) | PINN k | R-hat max | wall time |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        k = "—" if r["k"] is None else f"{r['k']['mean']:.3f} ± {r['k']['sd']:.3f}"
        pinn = "—" if r["pinn_k"] is None else f"{r['pinn_k']:.3f}"
        lines.append(f"| {r['experiment']} | {r['noise']} | {r['mask']} | {r['numbers']:,} | "
                     f"{r['within']:.2f} | {r['band']:.3f} | {r['rel_l2']:.3f} | {k} | {pinn} | "
                     f"{r['rhat']:.2f} | {r['seconds']:.0f} s |")
    return "\n".join(lines)


def exact_lines(rows: list[dict]) -> list[str]:
    """The runs with an exact reference (a linear head on the linear problem): NUTS against
    it."""
    lines = []
    for r in rows:
        if r["mean_z_max"] is not None:
            low, high = r["var_ratio"]
            lines.append(f"- `{r['experiment']}`, noise {r['noise']}, head, {r['draws']}: NUTS "
                         f"against the "
                         f"exact posterior: mean_z_max {r['mean_z_max']:.3f} (bulk ESS "
                         f"{r['ess']:.0f}: the Monte-Carlo error of the largest of 51 means is "
                         f"about 2.5/√ESS = {2.5 / r['ess'] ** 0.5:.3f}), variance ratios "
                         f"{low:.2f}–{high:.2f}.")
    return lines


def cheapest(rows: list[dict], level: float) -> list[str]:
    lines = []
    for experiment, noise in dict.fromkeys((r["experiment"], r["noise"]) for r in rows):
        reached = [r for r in rows if (r["experiment"], r["noise"]) == (experiment, noise)
                   and r["within"] >= level]
        best = min(reached, key=lambda r: r["numbers"])["mask"] if reached else "none"
        lines.append(f"- `{experiment}`, noise {noise}: {best}")
    return lines


def render(rows: list[dict], exact_rows: list[dict], total: float) -> str:
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    return "\n".join([
        "<!-- Written by scripts/bench_pinn.py (make bench-pinn); do not edit by hand. -->",
        "## Measured",
        "",
        f"One `python scripts/bench_pinn.py` on {machine}: the table's runs together "
        f"{sum(r['seconds'] for r in rows):.0f} s; with the two runs of the shipped "
        f"`poisson_bpinn` (NUTS, 4 chains of 500 draws) for the exact check, {total:.0f} s.",
        "",
        table(rows),
        "",
        "NUTS on the head against its exact posterior (the linear problem):",
        "",
        *exact_lines(rows + exact_rows),
        "",
        "The cheapest mask (fewest sampled numbers) whose band holds the truth at ≥ 90% of the "
        "eval points:",
        "",
        *cheapest(rows, 0.9),
        "",
        "Yang et al. (2021), Table 1, k by B-PINN-HMC over all weights: noise 0.01 "
        f"{PAPER_K[0.01]}; noise 0.1 {PAPER_K[0.1]}. Their §3.2.1 and §3.2.3 give figures "
        "only: the HMC error is \"mostly bounded by the two standard deviations\".",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(ROOT / "docs" / "pinn.md"))
    parser.add_argument("--quick", action="store_true", help="the first case's head only")
    args = parser.parse_args()
    from bench_sections import emit

    rows, started = [], time.perf_counter()
    cases = CASES[:1] if args.quick else CASES
    with tempfile.TemporaryDirectory() as folder:
        for experiment, noise in cases:
            for mask in (["head"] if args.quick else MASKS):
                rows.append(run_case(experiment, noise, mask, Path(folder)))
                r = rows[-1]
                print(f"{experiment} {noise} {mask}: within {r['within']:.2f} rel-L2 "
                      f"{r['rel_l2']:.3f} k {r['k']} {r['seconds']:.0f} s", flush=True)
        exact_rows = [] if args.quick else [
            run_case("poisson_bpinn", noise, "head", Path(folder), SHIPPED)
            for noise in (0.01, 0.1)]
    emit(render(rows, exact_rows, time.perf_counter() - started),
         "-" if args.quick else args.output, None if args.quick else "measured")


if __name__ == "__main__":
    main()
