"""`make bench`: sweeps and durable runs, each against its baseline in the same run.

(k) A 12-job sweep (`sampler.step_size=1e-4,3e-4,1e-3 seed=0,1,2,3` of sin_head): with the
    compilation cache off (every job compiles), with an empty cache (cold: the first job fills
    it), again with the cache it filled (warm), warm with `report.plots=false`, and warm with
    `+launcher=local_parallel` (2 joblib workers); wall time of the whole command, and each
    later job's seconds beyond its sampling (meta.json: `wall_s` less warmup and sampling).
(l) Resume overhead: one long run uninterrupted, against the same run stopped by SIGTERM half
    way and finished by `headbayes resume` (the two processes' wall times added up); medians
    over --repeats such pairs.
Writes the `sweep` section of docs/benchmarks.md (use --output - to print only).
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ["run", "-m", "+experiment=sin_head", "sampler.step_size=1e-4,3e-4,1e-3",
         "seed=0,1,2,3"]
LONG = ["+experiment=sin_head", "sampler.warmup=24000000", "sampler.keep=1000",
        "sampler.thin=1000"]


def headbayes(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "headbayes", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wall(args: list[str], env: dict, expect: int = 0) -> float:
    start = time.perf_counter()
    proc = headbayes(args, env)
    _, err = proc.communicate()
    if proc.returncode != expect:
        raise RuntimeError(f"headbayes {' '.join(args)} exited {proc.returncode}: "
                           f"{err.decode()[-2000:]}")
    return time.perf_counter() - start


def beyond_sampling(sweep_dir: Path) -> list[dict]:
    """Per job after the first (the process's start-up is the first's): seconds of the job
    (`wall_s`, from the end of the job before) and of its stages, less warmup and sampling."""
    jobs = []
    for meta_path in sorted(sweep_dir.glob("*/meta.json"), key=lambda p: int(p.parent.name)):
        timings = json.loads(meta_path.read_text())["timings"]
        stages = timings["stages"]
        loop = stages.get("warmup", 0.0) + stages.get("sampling", 0.0)
        jobs.append({"beyond": timings["wall_s"] - loop, **stages})
    return jobs[1:]


def sweeps(repeats: int) -> tuple[dict, dict]:
    times = {"off": [], "cold": [], "warm": [], "warm, no plots": [], "warm, local_parallel": []}
    jobs = {"warm": [], "warm, no plots": []}
    for i in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "HEADBAYES_OUTPUT_DIR": tmp,
                   "HEADBAYES_COMPILE_CACHE": f"{tmp}/cache"}
            times["off"].append(wall(SWEEP + [f"hydra.sweep.dir={tmp}/off"],
                                     {**env, "HEADBAYES_COMPILE_CACHE": ""}))
            times["cold"].append(wall(SWEEP + [f"hydra.sweep.dir={tmp}/cold"], env))
            times["warm"].append(wall(SWEEP + [f"hydra.sweep.dir={tmp}/warm"], env))
            jobs["warm"] += beyond_sampling(Path(tmp) / "warm")
            times["warm, no plots"].append(wall(
                SWEEP + ["report.plots=false", f"hydra.sweep.dir={tmp}/noplots"], env))
            jobs["warm, no plots"] += beyond_sampling(Path(tmp) / "noplots")
            times["warm, local_parallel"].append(wall(
                SWEEP + ["+launcher=local_parallel", f"hydra.sweep.dir={tmp}/parallel"], env))
        print(f"sweep {i}: {[t[-1] for t in times.values()]}", file=sys.stderr)
    return {k: statistics.median(v) for k, v in times.items()}, jobs


def job_table(jobs: dict) -> list[str]:
    """Median seconds per later job: beyond sampling, and the stages that make it up."""
    names = ["startup", "prepare", "compile", "writing", "report", "plots"]
    lines = ["| warm sweep | beyond sampling (s) | " + " | ".join(names) + " |",
             "|---|---:|" + "---:|" * len(names)]
    for label, rows in jobs.items():
        med = lambda key: statistics.median(r.get(key, 0.0) for r in rows)  # noqa: E731
        lines.append(f"| {label} | **{med('beyond'):.3f}** | "
                     + " | ".join(f"{med(n):.3f}" for n in names) + " |")
    return lines


RESTART_STAGES = ("startup", "config", "data", "model", "scales", "prepare", "compile")


def resume_overhead(repeats: int) -> dict:
    """Medians over `repeats` pairs (uninterrupted run, then the same run cut half way and
    resumed) of the seconds and of each pair's overhead."""
    pairs = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "HEADBAYES_OUTPUT_DIR": tmp,
               "HEADBAYES_COMPILE_CACHE": f"{tmp}/cache"}
        wall(["run", *LONG, "sampler.warmup=0", f"hydra.run.dir={tmp}/fill"],
             env)  # fills the compilation cache: both sides below start warm
        for i in range(repeats):
            uninterrupted = wall(["run", *LONG, f"hydra.run.dir={tmp}/whole{i}"], env)
            start = time.perf_counter()
            proc = headbayes(["run", *LONG, f"hydra.run.dir={tmp}/cut{i}"], env)
            time.sleep(uninterrupted / 2)
            proc.send_signal(signal.SIGTERM)
            proc.communicate()
            first = time.perf_counter() - start
            if proc.returncode != 143:
                raise RuntimeError(f"expected exit 143 after SIGTERM, got {proc.returncode}")
            second = wall(["resume", f"{tmp}/cut{i}"], env)
            stages = json.loads(Path(f"{tmp}/cut{i}/meta.json").read_text())["timings"]["stages"]
            pairs.append({"uninterrupted": uninterrupted, "first": first, "second": second,
                          "overhead": (first + second) / uninterrupted - 1,
                          "restart": sum(stages.get(k, 0.0) for k in RESTART_STAGES)})
            print(f"resume pair {i}: {pairs[-1]}", file=sys.stderr)
    return {key: statistics.median(p[key] for p in pairs) for key in pairs[0]}


def render(info: str, sweep: dict, jobs: dict, resume: dict) -> str:
    off, cold, warm = sweep["off"], sweep["cold"], sweep["warm"]
    parallel, no_plots = sweep["warm, local_parallel"], sweep["warm, no plots"]
    return "\n".join([
        "## Sweeps and durable runs", "",
        f"Machine: {info}. Command: `make bench` (`scripts/bench_sweep.py`); wall time of the",
        "whole command in a subprocess, median of the repeats.", "",
        "(k) 12-job sweep `headbayes run -m +experiment=sin_head "
        "sampler.step_size=1e-4,3e-4,1e-3 seed=0,1,2,3`:", "",
        "| sweep | wall s | vs cold |", "|---|---:|---:|",
        f"| basic launcher, compilation cache off (every job compiles) | {off:.1f} | "
        f"{off / cold:.2f} |",
        f"| basic launcher, empty compilation cache (cold) | {cold:.1f} | 1.00 |",
        f"| basic launcher, warm cache | {warm:.1f} | {warm / cold:.2f} |",
        f"| basic launcher, warm cache, `report.plots=false` | {no_plots:.1f} | "
        f"{no_plots / cold:.2f} |",
        f"| `+launcher=local_parallel` (2 workers), warm cache | {parallel:.1f} | "
        f"{parallel / cold:.2f} |", "",
        f"Warm / cold: {warm / cold:.2f} (target ≤ 0.5); warm / cache off: {warm / off:.2f};",
        f"local_parallel / basic (both warm): {parallel / warm:.2f} (target ≤ 0.7). In one",
        "process the first job compiles for the other eleven (they differ in seed and step size,",
        "which reach the program as arguments: `pipeline.program_key`), so cold and warm differ",
        "by one compilation; the rest of each job is start-up, the report and its plots.", "",
        "Each later job's seconds beyond its warmup and sampling (median over the jobs after the",
        "first of every repeat; `startup` is Hydra launching the job; target ≤ 0.3 s):", "",
        *job_table(jobs), "",
        f"(l) Resume: a {resume['uninterrupted']:.1f} s run (sin_head, 25M steps) uninterrupted,",
        f"against SIGTERM half way ({resume['first']:.1f} s) then `headbayes resume` "
        f"({resume['second']:.1f} s): overhead **{resume['overhead'] * 100:.1f}%** of the "
        "uninterrupted run (target ≤ 5%; warm compilation cache on both sides; medians over",
        "the repeats, each an uninterrupted run then a cut one: this machine's speed drifts by",
        "several percent over such a run, so one pair alone can miss by that much either way).",
        f"The resumed process's own start, until its first step (meta.json: startup to "
        f"compile), took {resume['restart']:.2f} s, "
        f"{resume['restart'] / resume['uninterrupted']:.1%} of the uninterrupted run: the part "
        "of the overhead that does not drift with the",
        "machine (the rest is the steps run after the last committed chunk, at most about 0.5 s).",
    ]) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output", default=str(ROOT / "docs/benchmarks.md"))
    args = parser.parse_args()
    from bench import machine
    from bench_sections import write_section

    sweep, jobs = sweeps(args.repeats)
    resume = resume_overhead(args.repeats)
    print(f"resume: {resume}", file=sys.stderr)
    section = render(machine(), sweep, jobs, resume)
    if args.output == "-":
        print(section)
    else:
        write_section(Path(args.output), "sweep", section)


if __name__ == "__main__":
    main()
