"""`make bench-uci`: headbayes on the standard UCI regression benchmark -> docs/uci.md.

Every dataset of data/uci/ (Hernández-Lobato & Adams splits, 20 each) runs `+experiment=uci`
with no hand-set number, in two variants measured side by side on every split:
- `uci` (the experiment's default): σ chosen on the validation rows, prior scale by evidence;
- `evidence`: σ and prior scale both by evidence on the training rows
  (`likelihood.sigma=evidence`);
plus the MAP network of the same runs (`map_test_*`, σ as learned by the default). Figures are
the mean ± standard error over the splits of the test RMSE and the test log-likelihood per point
(−test_nll), both in the target's original units, and the mean 90% coverage, next to the
published figures of data/uci/README.md. Wall time per split is measured in one process
through the Python API (`headbayes.run`: pretraining, learning the scales, sampling, report
with plots; no interpreter start-up), the first split of the first dataset including the
compilation of every program. Then the gap splits (Foong et al. 2019; `data.gap=K`, one per
input of each dataset: the middle third of the rows sorted by input K held out), with the same
recipe, in the section "gap" (`--gap-only` measures and rewrites that section alone).

    python scripts/bench_uci.py [--splits 20] [--datasets yacht energy] [--output docs/uci.md]
    python scripts/bench_uci.py --gap-only
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_sections import markers

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "uci"
VARIANTS = {"uci": [], "evidence": ["likelihood.sigma=evidence"]}

# data/uci/README.md: test RMSE / test log-likelihood, mean ± standard error over 20 splits
PUBLISHED = {
    "concrete": {"MC dropout": ((4.82, 0.16), (-2.93, 0.02)),
                 "PBP": ((5.67, 0.09), (-3.16, 0.02)),
                 "Deep Ensembles": ((6.03, 0.58), (-3.06, 0.18))},
    "energy": {"MC dropout": ((0.54, 0.06), (-1.21, 0.01)),
               "PBP": ((1.80, 0.05), (-2.04, 0.02)),
               "Deep Ensembles": ((2.09, 0.29), (-1.38, 0.22))},
    "yacht": {"MC dropout": ((0.67, 0.05), (-1.25, 0.01)),
              "PBP": ((1.02, 0.05), (-1.63, 0.02)),
              "Deep Ensembles": ((1.58, 0.48), (-1.18, 0.21))},
    "wine-quality-red": {"MC dropout": ((0.62, 0.01), (-0.93, 0.01)),
                         "PBP": ((0.64, 0.01), (-0.97, 0.01)),
                         "Deep Ensembles": ((0.64, 0.04), (-0.94, 0.12))},
}


def run_split(name: str, split: int, variant: list, out: Path) -> tuple[dict, float]:
    import headbayes

    cfg = headbayes.compose(["+experiment=uci", f"data.root={DATA / name}",
                             f"data.split={split}", *variant])
    started = time.perf_counter()
    run = headbayes.run(cfg, run_dir=out / f"{name}-{split}-{'-'.join(variant) or 'uci'}")
    return run.metrics, time.perf_counter() - started


def measure_gap(datasets: list) -> dict:
    """{dataset: [figures of the gap split of each input]} with the `uci` recipe."""
    import headbayes

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in datasets:
            inputs = len((DATA / name / "index_features.txt").read_text().split())
            results[name] = []
            for k in range(inputs):
                cfg = headbayes.compose(["+experiment=uci", f"data.root={DATA / name}",
                                         f"data.gap={k}", "report.plots=false"])
                figures = headbayes.run(cfg, run_dir=Path(tmp) / f"{name}-gap{k}").metrics
                results[name].append(figures)
                print(f"{name} gap {k}: cov90 {figures['test_coverage_90']:.2f} LL "
                      f"{-figures['test_nll']:.3f} (MAP cov90 "
                      f"{figures['map_test_coverage_90']:.2f})", flush=True)
    return results


def gap_section(results: dict) -> str:
    lines = ["## Gap splits", "",
             "`headbayes run +experiment=uci data.root=data/uci/NAME data.gap=K`, one run per "
             "input K: the rows sorted by input K, the middle third held out (Foong et al. "
             "2019, \"in-between\" uncertainty), the same recipe. Means over the inputs; the "
             "coverage is of the held-out middle third.", "",
             "| dataset | gap splits | 90% coverage in the gap | lowest | test log-likelihood | "
             "MAP network's 90% coverage | MAP network's log-likelihood |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, rows in results.items():
        coverage = [r["test_coverage_90"] for r in rows]
        lines.append(f"| {name} | {len(rows)} | {np.mean(coverage):.3f} | {min(coverage):.3f} | "
                     f"{mean_se([-r['test_nll'] for r in rows])} | "
                     f"{np.mean([r['map_test_coverage_90'] for r in rows]):.3f} | "
                     f"{mean_se([-r['map_test_nll'] for r in rows])} |")
    reached = [n for n, rows in results.items()
               if np.mean([r["test_coverage_90"] for r in rows]) >= 0.80]
    lines += ["", f"Mean 90% coverage in the gap at least 0.80: {len(reached)} of "
              f"{len(results)} ({', '.join(reached) or 'none'}).", ""]
    return "\n".join(lines)


def mean_se(values) -> str:
    values = np.asarray(values, np.float64)
    return f"{values.mean():.2f} ± {values.std(ddof=1) / np.sqrt(len(values)):.2f}"


def measure(datasets: list, splits: int) -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in datasets:
            for label, variant in VARIANTS.items():
                rows = []
                for split in range(splits):
                    figures, seconds = run_split(name, split, variant, Path(tmp))
                    rows.append({**figures, "seconds": seconds})
                    print(f"{name} split {split} {label}: RMSE {figures['test_rmse']:.3f} "
                          f"LL {-figures['test_nll']:.3f} cov90 "
                          f"{figures['test_coverage_90']:.2f} ({seconds:.2f} s)", flush=True)
                results[(name, label)] = rows
    return results


def command_line(name: str, repeats: int = 3) -> list[float]:
    """Wall seconds of `headbayes run +experiment=uci` on split 0 of `name` as a user types it:
    a fresh process each time (interpreter start-up and imports included), the first with an
    empty compilation cache, the others with the cache the first one filled."""
    seconds = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "HEADBAYES_OUTPUT_DIR": tmp,
               "HEADBAYES_COMPILE_CACHE": f"{tmp}/cache"}
        for _ in range(repeats):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "headbayes", "run", "+experiment=uci",
                            f"data.root={DATA / name}", "data.split=0"], env=env, check=True,
                           capture_output=True)
            seconds.append(time.perf_counter() - started)
    return seconds


def table(results: dict, datasets: list, splits: int) -> list[str]:
    lines = ["| dataset | method | test RMSE | test log-likelihood | 90% coverage | "
             "σ (standardised) |",
             "|---|---|---:|---:|---:|---:|"]
    for name in datasets:
        for label in VARIANTS:
            rows = results[(name, label)]
            lines.append(
                f"| {name} | headbayes `{label}` | {mean_se([r['test_rmse'] for r in rows])} | "
                f"{mean_se([-r['test_nll'] for r in rows])} | "
                f"{np.mean([r['test_coverage_90'] for r in rows]):.3f} | "
                f"{np.mean([r['likelihood_sigma'] for r in rows]):.3f} |")
        rows = results[(name, "uci")]
        lines.append(f"| {name} | MAP network (same runs) | "
                     f"{mean_se([r['map_test_rmse'] for r in rows])} | "
                     f"{mean_se([-r['map_test_nll'] for r in rows])} | "
                     f"{np.mean([r['map_test_coverage_90'] for r in rows]):.3f} | |")
        for method, ((rmse, rmse_se), (ll, ll_se)) in PUBLISHED[name].items():
            lines.append(f"| {name} | {method} (published, 20 splits) | {rmse:.2f} ± {rmse_se:.2f}"
                         f" | {ll:.2f} ± {ll_se:.2f} | | |")
    return lines


def against_dropout(results: dict, datasets: list) -> list[str]:
    """One line per comparison with MC dropout's published means (the `uci` variant)."""
    def mean(name, key):
        return np.mean([r[key] for r in results[(name, "uci")]])

    dropout = {n: PUBLISHED[n]["MC dropout"] for n in datasets}
    ll = [n for n in datasets if -mean(n, "test_nll") >= dropout[n][1][0]]
    rmse = [n for n in datasets if mean(n, "test_rmse") <= dropout[n][0][0]]
    coverage = [n for n in datasets if 0.85 <= mean(n, "test_coverage_90") <= 0.95]
    return [f"- test log-likelihood at least MC dropout's published mean: {len(ll)} of "
            f"{len(datasets)} ({', '.join(ll) or 'none'});",
            f"- test RMSE at most MC dropout's: {len(rmse)} of {len(datasets)} "
            f"({', '.join(rmse) or 'none'});",
            f"- mean 90% coverage in [0.85, 0.95]: {len(coverage)} of {len(datasets)} "
            f"({', '.join(coverage) or 'none'})."]


def timings(results: dict, datasets: list) -> list[str]:
    lines = ["| dataset | method | first split (s) | median split (s) | max split (s) |",
             "|---|---|---:|---:|---:|"]
    for name in datasets:
        for label in VARIANTS:
            seconds = [r["seconds"] for r in results[(name, label)]]
            lines.append(f"| {name} | `{label}` | {seconds[0]:.2f} | "
                         f"{statistics.median(seconds):.2f} | {max(seconds):.2f} |")
    return lines


def render(results: dict, datasets: list, splits: int, cli: list, gap: str) -> str:
    import jax

    command = "python scripts/bench_uci.py" + ("" if splits == 20 else f" --splits {splits}")
    return "\n".join([
        "# headbayes on the UCI regression benchmark",
        "",
        f"Written by `{command}` (`make bench-uci`); do not edit by hand. Machine: "
        f"{platform.processor() or platform.machine()}, {jax.devices()[0].device_kind}, "
        f"Python {platform.python_version()}, jax {jax.__version__}.",
        "",
        f"Datasets and the {splits} standard splits: `data/uci/` (Hernández-Lobato & Adams 2015, "
        "as distributed with Gal & Ghahramani's experiments; UCI Machine Learning Repository, "
        "CC BY 4.0; see data/uci/README.md). One command per split, no hand-set number:",
        "",
        "    headbayes run +experiment=uci data.root=data/uci/NAME data.split=K",
        "",
        "a 50-unit ReLU layer pretrained with weight decay 1e-4 and early stopping on 10% of the "
        "training rows, then the linear head's exact posterior (1000 i.i.d. draws, "
        "`sampler=exact`). `uci`: the noise σ chosen on those validation rows "
        "(`likelihood.sigma=validation`, the body never saw them), the prior scale by evidence; "
        "`evidence`: both by evidence on the training rows (`likelihood.sigma=evidence`). "
        "Test RMSE and log-likelihood per point in the target's original units, mean ± standard "
        "error over the splits; published figures from data/uci/README.md.",
        "",
        *table(results, datasets, splits),
        "",
        "Headbayes `uci` against MC dropout (grid search, the README's figures):",
        "",
        *against_dropout(results, datasets),
        "",
        "## Wall time per split",
        "",
        "One process, `headbayes.run` per split (pretraining, learning the scales, sampling, "
        "report with plots); the first split of the first dataset includes compiling every "
        "program (the persistent compilation cache was on, as by default).",
        "",
        *timings(results, datasets),
        "",
        f"The command line, `headbayes run +experiment=uci data.root=data/uci/{datasets[0]} "
        f"data.split=0` in a fresh process (start-up, imports, report and plots included): "
        f"{cli[0]:.1f} s with an empty compilation cache, then "
        f"{', '.join(f'{t:.1f}' for t in cli[1:])} s with the cache it filled.",
        "",
        "\n".join(markers("gap")[:1] + [gap.strip()] + markers("gap")[1:]),
        "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=20)
    parser.add_argument("--datasets", nargs="*", default=sorted(PUBLISHED))
    parser.add_argument("--output", default=str(ROOT / "docs" / "uci.md"),
                        help="file to write, or - to print")
    parser.add_argument("--gap-only", action="store_true",
                        help="measure the gap splits alone and rewrite their section")
    args = parser.parse_args()
    from bench_sections import emit

    gap = gap_section(measure_gap(args.datasets))
    if args.gap_only:
        emit(gap, args.output, section="gap")
        return
    results = measure(args.datasets, args.splits)
    text = render(results, args.datasets, args.splits, command_line(args.datasets[0]), gap)
    emit(text, args.output)


if __name__ == "__main__":
    main()
