"""`make bench`: the sampling loop's program compiled with headbayes' CPU options
(`headbayes.core.xla`: XLA's older fusion emitters) against XLA's defaults, in one process; and the
program that computes a model's initial values (`xla.jit_once`) against XLA's defaults.

For each config the chunk program is compiled both ways, alternating, each `--repeats` times
(median; JAX's in-memory caches cleared before each, so every compile is a real one); then
each program runs the config's whole loop (warmup and kept
draws, `runner.run_loop` as `headbayes run` does) `--repeats` times, alternating (median), and
the draws of the two are compared bit for bit. The compilation cache is off. Writes the
`compile` section of docs/benchmarks.md (use --output - to print only).
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sections import emit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {  # with mask=all, step sizes at which headbayes' chains stay finite
    "sin_head (SGLD, 17 numbers)": ["+experiment=sin_head"],
    "sin_head_nuts (NUTS, dense mass, 4 chains)": ["+experiment=sin_head_nuts"],
    "sin_head, every weight (SGLD, 321 numbers)": ["+experiment=sin_head", "mask=all",
                                                   "sampler.step_size=1e-4"],
    "width 256, depth 3, 10^4 points, batch 256, every weight (SGLD)": [
        "+experiment=sin_head", "model.width=256", "model.depth=3", "data.n_train=10000",
        "sampler.batch_size=256", "mask=all", "sampler.step_size=1e-8", "sampler.warmup=300",
        "sampler.keep=100"],
}


def measure(overrides: list[str], repeats: int) -> dict:
    import headbayes
    from headbayes.engine import runner
    from headbayes.core import xla
    from headbayes.datasets import make_dataset
    from headbayes.job.plan import build_position, prepare_loop

    cfg = headbayes.compose(overrides)
    s = cfg.sampler
    params, static, mask = build_position(cfg)
    loop, _ = prepare_loop(cfg, params, static, mask, make_dataset(cfg.data))
    size = sum(int(np.size(leaf)) for leaf, m in zip(jax.tree.leaves(params),
                                                     jax.tree.leaves(mask)) if m)
    slots = runner.choose_slots(s.keep, s.num_chains, size)
    args = (loop.state, loop.chain_keys, np.int32(0), np.zeros(slots, np.int32), loop.problem,
            loop.hyper)
    compile_s, programs = compile_both(runner._make_chunk_fn(loop.sampler), args,
                                       xla.CPU_OPTIONS, repeats)
    run_s = {name: [] for name in programs}
    draws, failed = {}, {}
    for _ in range(repeats):
        for name, program in programs.items():
            start = time.perf_counter()
            kept = [d for _, _, d, _ in runner.run_loop(
                program, loop.state, loop.chain_keys, loop.problem, loop.hyper,
                warmup=s.warmup, keep=s.keep, thin=s.thin, slots=slots) if d is not None]
            run_s[name].append(time.perf_counter() - start)
            draws[name] = [np.asarray(x) for d in kept for x in jax.tree.leaves(d)]
            drawn = sum(x.shape[1] for x in draws[name][:1])
            if drawn != s.keep or not all(np.isfinite(x).all() for x in draws[name]):
                failed[name] = drawn  # run_loop stopped at the first non-finite value
    same = all(np.array_equal(a, b) for a, b in zip(*draws.values()))
    return {"compile": compile_s, "run": {k: statistics.median(v) for k, v in run_s.items()},
            "same": same, "failed": failed, "steps": s.warmup + s.keep * s.thin}


def compile_both(fn, args: tuple, options: dict, repeats: int) -> tuple[dict, dict]:
    """({name: median compile seconds}, {name: program}) of `fn(*args)` compiled with XLA's
    defaults ("XLA defaults") and with `options` ("headbayes"), alternating, `repeats` times
    each."""
    named = {"XLA defaults": {}, "headbayes": options}
    seconds = {name: [] for name in named}
    programs = {}
    for _ in range(repeats):
        for name, opts in named.items():
            jax.clear_caches()  # else the same module compiles once and is then looked up
            lowered = jax.jit(fn, compiler_options=opts).lower(*args)
            start = time.perf_counter()
            programs[name] = lowered.compile()
            seconds[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in seconds.items()}, programs


MODELS = {  # label: overrides (distinct models of the shipped experiments)
    "seed MLP 1-16-16-1 (sin_head, sin_head_nuts)": ["+experiment=sin_head"],
    "MLP 2-32-32-2 (moons_head)": ["+experiment=moons_head"],
    "CNN on 8x8 images (digits_cnn_head)": ["+experiment=digits_cnn_head"],
}


def measure_model(overrides: list[str], repeats: int) -> dict:
    """Compile seconds (median) of the model's values with XLA's defaults and with
    `xla.ONCE_OPTIONS`, alternating, and whether the values are the same bit for bit."""
    import equinox as eqx

    import headbayes
    from headbayes.core import xla
    from headbayes.models import _build

    cfg = headbayes.compose(overrides)
    seconds, programs = compile_both(lambda: eqx.filter(_build(cfg), eqx.is_array), (),
                                     xla.ONCE_OPTIONS, repeats)
    values = [[np.asarray(x) for x in jax.tree.leaves(p())] for p in programs.values()]
    same = all(np.array_equal(a, b) for a, b in zip(*values))
    return {"compile": seconds, "same": same}


def compile_cells(label: str, seconds: dict) -> str:
    """A table row's first cells: the label, both compile times and their ratio."""
    return (f"| {label} | {seconds['XLA defaults']:.2f} | {seconds['headbayes']:.2f} | "
            f"{seconds['headbayes'] / seconds['XLA defaults']:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    from bench import machine

    lines = ["## Compile options: the sampling loop's program", "",
             f"`python scripts/bench_compile.py --repeats {args.repeats}` (part of `make "
             f"bench`). Machine: {machine()}. The chunk program of each config compiled with XLA's "
             "defaults and with headbayes' CPU options (`headbayes.core.xla`: "
             "`xla_cpu_use_fusion_emitters: False`), alternating in one process, median of "
             f"{args.repeats}; \"loop\" is the run's whole sampling loop (warmup and kept draws). "
             "`HEADBAYES_XLA_DEFAULTS=1` gives XLA's defaults.", "",
             "| config | compile, XLA defaults (s) | compile, headbayes (s) | ratio | "
             "loop, XLA defaults (s) | loop, headbayes (s) | ratio | same draws |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for label, overrides in CONFIGS.items():
        r = measure(overrides, args.repeats)
        c, run = r["compile"], r["run"]
        same = "yes" if r["same"] else "no (last-bit rounding, amplified)"
        ratio = f"{run['headbayes'] / run['XLA defaults']:.2f}x"
        if r["failed"]:  # a chain that stopped early ran fewer steps: its time is no measure
            same = "no: " + ", ".join(f"{name}'s chain not finite after {n} draws"
                                      for name, n in r["failed"].items())
            ratio = "—"
        lines.append(f"{compile_cells(label, c)} {run['XLA defaults']:.3f} | "
                     f"{run['headbayes']:.3f} | {ratio} | {same} |")
        print(lines[-1], file=sys.stderr)
    lines += ["", "The program that computes a model's initial values runs once per job: "
              "`xla.jit_once` compiles it with `xla.ONCE_OPTIONS` (those emitters and LLVM's "
              "optimisation level 1); same protocol:", "",
              "| model | compile, XLA defaults (s) | compile, headbayes (s) | ratio | "
              "same values |",
              "|---|---:|---:|---:|---|"]
    for label, overrides in MODELS.items():
        r = measure_model(overrides, args.repeats)
        c = r["compile"]
        lines.append(f"{compile_cells(label, c)} {'yes' if r['same'] else 'no'} |")
        print(lines[-1], file=sys.stderr)
    emit("\n".join(lines), args.output, "compile")


if __name__ == "__main__":
    main()
