"""`make bench`: headbayes against a minimal hand-written script, measured in the same run.

(a) End-to-end wall time and peak memory (max RSS) of `headbayes run +experiment=sin_head` and
    of `scripts/minimal_sgld.py`, alternating, median of --repeats runs each.
(b) Steady-state microseconds per SGLD step: headbayes' compiled chunk loop against one
    hand-written `lax.scan`, same number of steps, median of --repeats timings after warm-up.
(c) Every sampler on the seed's head: gradient evaluations and wall time until the bulk ESS of
    every sampled number is >= 400 (keep doubled from the sampler's default until it is, or
    until --max-grads gradient evaluations), with the chain's distance from the exact posterior.
(d) End to end with an exact-posterior sampler: `headbayes run +experiment=sin_head_nuts` and
    `+experiment=sin_head sampler=hmc`, with an empty and with a warm compilation cache.
Writes the `main` section of docs/benchmarks.md (use --output - to print only).
"""

import argparse
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import jax

    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"jax {jax.__version__}, device {jax.devices()[0].device_kind}")


def measured(cmd: list[str], env: dict | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one subprocess."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})})
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd} failed: {proc.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def end_to_end(repeats: int) -> dict:
    results = {"headbayes": [], "headbayes, warm cache": [], "minimal": []}
    command = [sys.executable, "-m", "headbayes", "run", "+experiment=sin_head"]
    with tempfile.TemporaryDirectory() as tmp:
        warm = {"HEADBAYES_COMPILE_CACHE": f"{tmp}/cache"}
        measured([*command, f"hydra.run.dir={tmp}/fill"], warm)  # fills the cache
        for i in range(repeats):
            results["headbayes"].append(measured(  # no compilation cache: compiles every run
                [*command, f"hydra.run.dir={tmp}/run{i}"], {"HEADBAYES_COMPILE_CACHE": ""}))
            results["headbayes, warm cache"].append(measured(
                [*command, f"hydra.run.dir={tmp}/warm{i}"], warm))
            results["minimal"].append(measured([sys.executable, "scripts/minimal_sgld.py"]))
    return {name: (statistics.median(w for w, _ in runs), statistics.median(m for _, m in runs))
            for name, runs in results.items()}


def _minimal_module():
    spec = importlib.util.spec_from_file_location("minimal_sgld", ROOT / "scripts/minimal_sgld.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _median_times(fns: dict, repeats: int, statistic=statistics.median) -> dict:
    """{name: median (or `statistic`) seconds of fn()} after a warm-up call each; the functions
    alternate, so a drift of the machine hits all of them alike."""
    times = {name: [] for name in fns}
    for fn in fns.values():
        fn()  # warm-up (compilation)
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistic(t) for name, t in times.items()}


STEP_REPEATS = 21  # calls of each loop in (b); the fastest is kept


def per_step(num_steps: int) -> dict:
    import jax

    import headbayes
    from headbayes.engine import runner
    from headbayes.job.plan import build_position, prepare_loop

    cfg = headbayes.compose(["+experiment=sin_head"])
    s = cfg.sampler
    loop, _ = prepare_loop(cfg, *build_position(cfg))
    slots = runner.choose_slots(s.keep, s.num_chains, 17)
    compiled, _ = runner.compile_loop(loop.sampler, loop.state, loop.chain_keys, loop.problem,
                                      loop.hyper, slots)

    def headbayes_loop():
        for _, state, _, _ in runner.run_loop(
                compiled, loop.state, loop.chain_keys, loop.problem, loop.hyper,
                warmup=num_steps - s.keep * s.thin, keep=s.keep, thin=s.thin, slots=slots):
            pass
        jax.block_until_ready(state)

    minimal = _minimal_module()
    head, data, logdensity, _ = minimal.setup()
    scan = minimal.make_steps(logdensity, data, num_steps)
    key = jax.random.PRNGKey(0)

    def hand_written():
        jax.block_until_ready(scan(head, key))

    medians = _median_times({"headbayes": headbayes_loop, "minimal": hand_written},
                            STEP_REPEATS, min)
    return {name: seconds / num_steps * 1e6 for name, seconds in medians.items()}


def ess_search(max_grads: int, keep: int = 1000) -> list[dict]:
    """Per single sampler (Gibbs, which needs groups, is `bench_gibbs.py`'s): the first run
    (thin doubling, `keep` draws per chain) whose smallest bulk ESS is >= 400, or the last one
    under `max_grads` gradient evaluations."""
    import headbayes
    from headbayes.report.write import compute_report
    from headbayes.samplers import SAMPLERS

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["HEADBAYES_COMPILE_CACHE"] = f"{tmp}/cache"
        for name in SAMPLERS.names():
            if "composite" in SAMPLERS[name].caps:  # gibbs needs mask.groups: bench_gibbs.py
                continue
            thin = headbayes.compose(["+experiment=sin_head", f"sampler={name}"]).sampler.thin
            while True:
                cfg = headbayes.compose(["+experiment=sin_head", f"sampler={name}",
                                         f"sampler.keep={keep}", f"sampler.thin={thin}"])
                run_dir = Path(tmp) / f"{name}-{thin}"
                run = headbayes.run(cfg, run_dir, report=False)
                meta = run.meta
                figures, _ = compute_report(run_dir)
                counts = meta["counts"]
                grads = counts["grad_evals_warmup"] + counts["grad_evals_sampling"]
                reached = figures["ess_bulk_min"] >= 400
                next_grads = counts["grad_evals_warmup"] + 2 * counts["grad_evals_sampling"]
                if reached or next_grads > max_grads:
                    results.append({"sampler": name, "thin": thin, "reached": reached,
                                    "grads": grads, "sampling_s": meta["timings"]["sampling_s"],
                                    **{k: figures[k] for k in ("ess_bulk_min", "mean_z_max",
                                                               "var_ratio_min", "var_ratio_max")}})
                    print(results[-1], flush=True)
                    break
                thin *= 2
        del os.environ["HEADBAYES_COMPILE_CACHE"]
    return results


def exact_samplers_end_to_end(repeats: int) -> dict:
    """Median wall and peak memory, first run with an empty cache vs later runs with it warm."""
    commands = {"+experiment=sin_head_nuts": ["+experiment=sin_head_nuts"],
                "+experiment=sin_head sampler=hmc": ["+experiment=sin_head", "sampler=hmc"]}
    results = {}
    for label, overrides in commands.items():
        cold, warm = [], []
        for i in range(repeats):
            with tempfile.TemporaryDirectory() as tmp:
                env = {"HEADBAYES_COMPILE_CACHE": f"{tmp}/cache"}
                for runs in (cold, warm):
                    runs.append(measured([sys.executable, "-m", "headbayes", "run", *overrides,
                                          f"hydra.run.dir={tmp}/run{len(runs)}"], env))
        results[label] = {"cold": statistics.median(w for w, _ in cold),
                          "warm": statistics.median(w for w, _ in warm),
                          "memory": max(m for _, m in cold + warm)}
    return results


def render(info: str, e2e: dict, steps: dict, search: list, exact_e2e: dict, args) -> str:
    h, m, w = e2e["headbayes"], e2e["minimal"], e2e["headbayes, warm cache"]
    search_rows = "\n".join(
        f"| {r['sampler']} | {'yes' if r['reached'] else 'no'} | {r['thin']} | "
        f"{r['grads']:,} | "
        f"{r['sampling_s']:.2f} | {r['ess_bulk_min']:.0f} | {r['mean_z_max']:.3g} | "
        f"{r['var_ratio_min']:.3g} | {r['var_ratio_max']:.3g} |" for r in search)
    exact_rows = "\n".join(f"| `headbayes run {k}` | {v['cold']:.2f} | {v['warm']:.2f} | "
                            f"{v['memory']:.0f} |" for k, v in exact_e2e.items())
    return f"""# Benchmarks

Produced by `make bench` (`python scripts/bench.py --repeats {args.repeats} --steps {args.steps}
--max-grads {args.max_grads}`);
every figure below comes from one run of that command, the baseline measured in the same run.

Machine: {info}.

## (a) End to end: `headbayes run +experiment=sin_head` vs `scripts/minimal_sgld.py`

The minimal script is the seed experiment by hand in plain JAX + blackjax: same data, model,
2300 SGLD steps in one `lax.scan`, same predictive figures; no config, files, report or plots.
headbayes also composes the Hydra config, writes the run directory, recomputes the report from
disk and draws two PNGs (in a second process that it starts first thing and that imports
matplotlib meanwhile, `headbayes.report.plotworker`). The compilation cache is off in the first
row, so headbayes compiles in every run as the script does; the second row runs with the persistent
cache filled by an earlier run (headbayes' default), which also holds the loop's exported
program and the model's initial arrays (`headbayes.engine.exported`): the warm run neither traces
the sampler nor imports blackjax. Median of {args.repeats} runs each, alternating; memory is peak
RSS.

| command | wall (s) | peak memory (MB) | wall / minimal script |
|---|---:|---:|---:|
| `headbayes run +experiment=sin_head`, cache off | {h[0]:.2f} | {h[1]:.0f} | {h[0] / m[0]:.2f}x |
| `headbayes run +experiment=sin_head`, warm cache | {w[0]:.2f} | {w[1]:.0f} | {w[0] / m[0]:.2f}x |
| `python scripts/minimal_sgld.py` | {m[0]:.2f} | {m[1]:.0f} | 1.00x |

Targets (issue 15): cache off ≤ 1.0x the minimal script, warm cache ≤ 0.7x; peak memory ≤
400 MB.

## (b) Steady state: microseconds per SGLD step

{args.steps} steps of the seed's sampler (the seed's keep and thin, the rest warmup) after a
warm-up call; the fastest of {STEP_REPEATS}, the two alternating (a shared machine only ever
adds time to such a loop). headbayes runs its chunked loop
as `headbayes run` does (warmup chunks growing to about 0.5 s, one chunk of 400 kept draws,
finiteness checked after every kept draw and warmup call, draws copied to the host); the
baseline is one `lax.scan`
over the same number of steps.

| loop | µs per step |
|---|---:|
| headbayes chunked loop | {steps['headbayes']:.2f} |
| hand-written `lax.scan` | {steps['minimal']:.2f} |
| ratio | {steps['headbayes'] / steps['minimal']:.2f}x |

Target (issue 15): ≤ 1.1x the hand-written scan.

## (c) Every sampler on `sin_head`: cost to bulk ESS ≥ 400 for all 17 sampled numbers

Each sampler with its default settings (`src/headbayes/configs/sampler/`) on the seed's data,
model, mask, likelihood and prior, keeping 1000 draws per chain; `thin` doubled from the
default until the smallest bulk ESS over the 17 numbers reaches 400, or until the next doubling
would pass {args.max_grads:,} gradient evaluations. Gradient evaluations count warmup
(adaptation, fitting) too; the time is the sampling loop's, without compilation. The last
three columns compare the chain with the exact posterior (0 and 1 are perfect). VI and Laplace draw i.i.d. from a fitted Gaussian, so
their ESS says nothing about whether that Gaussian is the posterior; the distance columns do.

| sampler | reached | thin | gradient evals | sampling (s) | min bulk ESS | mean_z_max | var_ratio_min | var_ratio_max |
|---|---|---:|---:|---:|---:|---:|---:|---:|
{search_rows}

## (d) Exact-posterior samplers end to end

Wall time of the whole command (Hydra, compile, warmup, sampling, report, plots), median of
{args.repeats}; "empty cache" is the first run with an empty JAX compilation cache, "warm cache"
the next run of the same command. Target: NUTS (or HMC) at the exact posterior in under 5 s.

| command | empty cache (s) | warm cache (s) | peak memory (MB) |
|---|---:|---:|---:|
{exact_rows}
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--max-grads", type=int, default=4_000_000)
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    e2e = end_to_end(args.repeats)
    print("end to end:", e2e, flush=True)
    exact_e2e = exact_samplers_end_to_end(args.repeats)
    print("exact samplers end to end:", exact_e2e, flush=True)
    steps = per_step(args.steps)
    print("per step:", steps, flush=True)
    search = ess_search(args.max_grads)
    text = render(machine(), e2e, steps, search, exact_e2e, args)
    from bench_sections import emit

    emit(text, args.output, "main")


if __name__ == "__main__":
    main()
