"""`make bench`: the cost of a step of a linear Gaussian head against N, with and without the
sufficient statistics (`headbayes.posterior.sufficient`).

`sin` data with N = 10^3 and 10^5 points, the seed's 16-16 tanh body frozen and cached, the
17-number head sampled full batch by MALA (one gradient per step) and by HMC with 10 leapfrog
steps (its default); each row times headbayes' compiled chunk loop per step with the
statistics (the default) and with the data path (the statistics switched off, the baseline),
alternating in the same process, median of --repeats timings. Writes the `sufficient` section of
docs/benchmarks.md (use --output - to print only).
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
SIZES = (1_000, 100_000)
SAMPLERS = {"mala": ["sampler=mala", "sampler.step_size=1e-5"],
            "hmc": ["sampler=hmc", "sampler.step_size=1e-5"]}


def runner_for(n: int, sampler: list, use_stats: bool):
    """`run(steps)` on the compiled loop of a head-only run with N = n."""
    import jax

    import headbayes
    from headbayes.engine import programs, runner
    from headbayes.posterior import sufficient
    from headbayes.job.plan import build_position, prepare_loop

    cfg = headbayes.compose(["+experiment=sin_head", f"data.n_train={n}", *sampler,
                             "likelihood.reduction=sum"])
    original = sufficient.worth_it
    sufficient.worth_it = original if use_stats else (lambda *args: False)
    programs.forget()  # both modes share the config's program key, not its programs
    try:
        loop, _ = prepare_loop(cfg, *build_position(cfg))
    finally:
        sufficient.worth_it = original
    compiled, _ = runner.compile_loop(*loop, 1)

    def run(steps):
        jax.block_until_ready(compiled(loop.state, loop.chain_keys, np.int32(0),
                                       np.array([steps], np.int32), loop.problem, loop.hyper))

    return run


def per_step(steps: int, repeats: int) -> dict:
    """{(sampler, n, "statistics" | "data"): microseconds per step}."""
    results = {}
    for name, sampler in SAMPLERS.items():
        for n in SIZES:
            runs = {mode: runner_for(n, sampler, mode == "statistics")
                    for mode in ("statistics", "data")}
            times = {mode: [] for mode in runs}
            for run in runs.values():
                run(steps)  # the first call of a compiled program
            for _ in range(repeats):
                for mode, run in runs.items():
                    start = time.perf_counter()
                    run(steps)
                    times[mode].append((time.perf_counter() - start) / steps * 1e6)
            for mode, values in times.items():
                results[(name, n, mode)] = statistics.median(values)
                print(name, n, mode, f"{results[(name, n, mode)]:.1f} us/step", flush=True)
    return results


def render(results: dict, steps: int, repeats: int) -> str:
    from bench import machine

    lines = [
        "## (s) A linear Gaussian head's step against N: sufficient statistics vs the data",
        "",
        f"`python scripts/bench_stats.py`; {machine()}. Head-only `sin_head` (17 numbers, body "
        f"cached), full batch, `likelihood.reduction=sum`; microseconds per step, median of "
        f"{repeats} timings of {steps} steps, the two modes alternating in one process.",
        "",
        "| sampler | N | statistics (µs/step) | data (µs/step) | data / statistics |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in SAMPLERS:
        for n in SIZES:
            fast, slow = results[(name, n, "statistics")], results[(name, n, "data")]
            lines.append(f"| {name} | {n:,} | {fast:.1f} | {slow:.1f} | {slow / fast:.1f}× |")
    for name in SAMPLERS:
        low, high = results[(name, SIZES[0], "statistics")], results[(name, SIZES[-1],
                                                                      "statistics")]
        lines.append("")
        lines.append(f"{name}: with the statistics a step at N = {SIZES[-1]:,} costs "
                     f"{high / low:.2f}× one at N = {SIZES[0]:,}.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    text = render(per_step(args.steps, args.repeats), args.steps, args.repeats)
    from bench_sections import emit

    emit(text, args.output, "sufficient")


if __name__ == "__main__":
    main()
