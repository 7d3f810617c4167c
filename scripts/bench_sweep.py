"""`make bench`: sweeps and durable runs, each against its baseline in the same run.

(k) A 12-job sweep (`sampler.step_size=1e-4,3e-4,1e-3 seed=0,1,2,3` of sin_head): with the
    compilation cache off (every job compiles), with an empty cache (cold: the first job fills
    it), again with the cache it filled (warm), warm with `report.plots=false`, and warm with
    `+launcher=local_parallel` (2 joblib workers); wall time of the whole command, and each
    later job's seconds beyond its sampling (meta.json: `wall_s` less warmup and sampling).
(l) Resume overhead: one long run uninterrupted, against the same run stopped by SIGTERM half
    way and finished by `headbayes resume` (the two processes' wall times added up); medians
    over --resume-pairs such pairs, in alternating order (uninterrupted first in even pairs,
    last in odd ones). Also each pair's seconds outside the sampling loop (process wall time
    less the `warmup` and `sampling` stages, from meta.json and, for the stopped process,
    `timings.earlier`): the same steps run on both sides, so this is the overhead without the
    machine's drift in speed between the processes.
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


def loop_seconds(timings: dict) -> float:
    return timings["stages"].get("warmup", 0.0) + timings["stages"].get("sampling", 0.0)


def stopped_and_resumed(run_dir: str, env: dict, seconds: float) -> tuple[float, float]:
    """Wall seconds of a run stopped by SIGTERM after `seconds`, and of its resume."""
    start = time.perf_counter()
    proc = headbayes(["run", *LONG, f"hydra.run.dir={run_dir}"], env)
    time.sleep(seconds)
    proc.send_signal(signal.SIGTERM)
    proc.communicate()
    first = time.perf_counter() - start
    if proc.returncode != 143:
        raise RuntimeError(f"expected exit 143 after SIGTERM, got {proc.returncode}")
    return first, wall(["resume", run_dir], env)


def fill_cache(tmp: str, env: dict) -> None:
    """Both sides of every pair below start warm: a short run fills the compilation cache with
    the report's programs, and LONG itself, stopped once its loop runs, stores its chunk
    program (its key holds the step counts)."""
    wall(["run", *LONG, "sampler.warmup=0", f"hydra.run.dir={tmp}/fill"], env)
    proc = headbayes(["run", *LONG, f"hydra.run.dir={tmp}/fill_long"], env)
    manifest = Path(f"{tmp}/fill_long/chain/manifest.json")
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        try:
            if (json.loads(manifest.read_text()).get("checkpoint") or {}).get("next_step"):
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.communicate()


def resume_overhead(pairs: int) -> dict:
    """Medians over `pairs` pairs (uninterrupted run, and the same run stopped half way and
    resumed; in alternating order) of the seconds and of each pair's overheads."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "HEADBAYES_OUTPUT_DIR": tmp,
               "HEADBAYES_COMPILE_CACHE": f"{tmp}/cache"}
        fill_cache(tmp, env)
        for i in range(pairs):
            whole, cut = f"{tmp}/whole{i}", f"{tmp}/cut{i}"
            if i % 2 == 0:
                uninterrupted = wall(["run", *LONG, f"hydra.run.dir={whole}"], env)
                first, second = stopped_and_resumed(cut, env, uninterrupted / 2)
            else:
                first, second = stopped_and_resumed(cut, env, rows[-1]["uninterrupted"] / 2)
                uninterrupted = wall(["run", *LONG, f"hydra.run.dir={whole}"], env)
            whole_t = json.loads(Path(f"{whole}/meta.json").read_text())["timings"]
            cut_t = json.loads(Path(f"{cut}/meta.json").read_text())["timings"]
            (stopped,) = cut_t["earlier"]  # the first process's timings, kept by the resume
            outside = (first - loop_seconds(stopped) + second - loop_seconds(cut_t)
                       - (uninterrupted - loop_seconds(whole_t)))
            rows.append({"uninterrupted": uninterrupted, "first": first, "second": second,
                         "overhead": (first + second) / uninterrupted - 1,
                         "outside_loop": outside / uninterrupted,
                         "restart": sum(cut_t["stages"].get(k, 0.0) for k in RESTART_STAGES)})
            print(f"resume pair {i}: {rows[-1]}", file=sys.stderr)
    medians = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
    return {**medians, "pairs": rows}


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
        "which reach the program as arguments: `programs.program_key`), so cold and warm differ",
        "by one compilation; the rest of each job is start-up, the report and its plots.", "",
        "Each later job's seconds beyond its warmup and sampling (median over the jobs after the",
        "first of every repeat; `startup` is Hydra launching the job; target ≤ 0.3 s):", "",
        *job_table(jobs), "",
        f"(l) Resume: a {resume['uninterrupted']:.1f} s run (sin_head, 25M steps) uninterrupted,",
        f"against SIGTERM half way ({resume['first']:.1f} s) then `headbayes resume` "
        f"({resume['second']:.1f} s); warm compilation cache on both sides; medians over "
        f"{len(resume['pairs'])} pairs, the uninterrupted run first in every other pair:", "",
        "| pair | uninterrupted s | stopped + resumed s | overhead (wall) | outside the loop "
        "| resumed process's start s |", "|---|---:|---:|---:|---:|---:|",
        *[f"| {i} | {r['uninterrupted']:.2f} | {r['first']:.2f} + {r['second']:.2f} | "
          f"{r['overhead']:.1%} | {r['outside_loop']:.1%} | {r['restart']:.2f} |"
          for i, r in enumerate(resume["pairs"])],
        f"| median | {resume['uninterrupted']:.2f} | {resume['first']:.2f} + "
        f"{resume['second']:.2f} | **{resume['overhead']:.1%}** | "
        f"**{resume['outside_loop']:.1%}** | {resume['restart']:.2f} |", "",
        "Target ≤ 5%. *Overhead (wall)*: the two processes' wall times against the",
        "uninterrupted one's. This machine's speed drifts by several percent between processes",
        "(a process samples at its own rate), so one pair can miss by that much either way.",
        "*Outside the loop*: the same sum, less each process's sampling loop (meta.json stages",
        "`warmup` and `sampling`; the stopped process's from `timings.earlier`): both sides run",
        "the same steps, so the drift of the sampling rate drops out (a pair during which the",
        "machine slowed still shows it: start-up and report take longer too). The resumed process's start",
        "(meta.json: startup to compile) is most of it: the interpreter's, JAX's and equinox's",
        "imports, and the saved state and program loaded; the stopped process finishes its",
        "chunk (at most about 0.5 s of steps) and commits it, so no step is run twice.",
    ]) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="of each sweep")
    parser.add_argument("--resume-pairs", type=int, default=4)
    parser.add_argument("--output", default=str(ROOT / "docs/benchmarks.md"))
    args = parser.parse_args()
    from bench import machine
    from bench_sections import write_section

    sweep, jobs = sweeps(args.repeats)
    resume = resume_overhead(args.resume_pairs)
    print(f"resume: {resume}", file=sys.stderr)
    section = render(machine(), sweep, jobs, resume)
    if args.output == "-":
        print(section)
    else:
        write_section(Path(args.output), "sweep", section)


if __name__ == "__main__":
    main()
