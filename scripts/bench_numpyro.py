"""`make bench`: headbayes' NUTS against a NumPyro script on the same posterior, cold, and
where every second of a job goes.

(p) `headbayes run +experiment=sin_head_nuts` with the compilation cache off against
    `scripts/numpyro_nuts.py` (the same 17 head numbers on the same frozen body, dense-mass NUTS,
    4 chains × 1000 draws after 500 warmup steps), alternating, median of --repeats wall times of
    the whole process, with each side's smallest bulk ESS; headbayes also with
    `report.plots=false`, with XLA's own compile options (`HEADBAYES_XLA_DEFAULTS=1`), and with
    the mass matrix adapted from the identity (`sampler.mass_init=identity`, NumPyro's start;
    the experiment starts from the inverse Hessian).
(q) The per-stage table (meta.json `timings.stages`, median per stage over the runs) of
    `sin_head_nuts` and `sin_head`, cache off.
NumPyro is a benchmark-only dependency (`pip install 'headbayes[bench]'`); without it (p) says
so. Writes the `numpyro` section of docs/benchmarks.md (use --output - to print only).
"""

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sections import emit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COLD = {"HEADBAYES_COMPILE_CACHE": ""}
IDENTITY = "headbayes `sampler.mass_init=identity` (the adaptation from NumPyro's start)"
VARIANTS = {  # label (after "headbayes"): (overrides, environment)
    "headbayes": ([], {}),
    "headbayes `report.plots=false`": (["report.plots=false"], {}),
    IDENTITY: (["sampler.mass_init=identity"], {}),
    "headbayes with `HEADBAYES_XLA_DEFAULTS=1` (XLA's compile options)":
        ([], {"HEADBAYES_XLA_DEFAULTS": "1"}),
}


def timed(cmd: list[str], env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **env}, capture_output=True,
                            text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {result.returncode}: {result.stderr[-2000:]}")
    return wall, result.stdout


def headbayes(overrides: list[str], tmp: str, env: dict | None = None) -> tuple[float, dict,
                                                                              dict]:
    """(wall s, meta.json, metrics.json) of one cold `headbayes run`; the meta dict also holds
    the process's CPU seconds (user and system) under `cpu_s`."""
    run_dir = Path(tmp) / f"run{len(list(Path(tmp).iterdir()))}"
    before = _children_cpu()
    wall, _ = timed([sys.executable, "-m", "headbayes", "run", *overrides,
                     f"hydra.run.dir={run_dir}"],
                    {**COLD, "HEADBAYES_OUTPUT_DIR": tmp, **(env or {})})
    meta = {**json.loads((run_dir / "meta.json").read_text()),
            "cpu_s": _children_cpu() - before}
    return wall, meta, json.loads((run_dir / "metrics.json").read_text())


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def stage_medians(metas: list[dict]) -> dict:
    names = list(dict.fromkeys(n for m in metas for n in m["timings"]["stages"]))
    return {n: statistics.median(m["timings"]["stages"].get(n, 0.0) for m in metas)
            for n in names}


def stage_table(title: str, metas: list[dict], walls: list[float]) -> list[str]:
    stages = stage_medians(metas)
    inside = statistics.median(m["timings"]["wall_s"] for m in metas)
    lines = [f"{title}: median process wall {statistics.median(walls):.2f} s, of which "
             f"{inside:.2f} s inside the process (`timings.wall_s`; the rest is the interpreter's "
             f"start before headbayes' first line and its exit):", "",
             "| stage | seconds | share of wall_s |", "|---|---:|---:|"]
    lines += [f"| {n} | {s:.3f} | {s / inside:.1%} |" for n, s in stages.items()]
    lines += [f"| sum of stages | {sum(stages.values()):.3f} | "
              f"{sum(stages.values()) / inside:.1%} |", ""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    have_numpyro = importlib.util.find_spec("numpyro") is not None
    walls = {name: [] for name in [*VARIANTS, "numpyro"]}
    ess, metas, head_metas, head_walls, identity_meta = {}, [], [], [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for name, (extra, env) in VARIANTS.items():
                wall, meta, metrics = headbayes(["+experiment=sin_head_nuts", *extra], tmp, env)
                walls[name].append(wall)
                ess[name] = metrics["ess_bulk_min"]
                if name == "headbayes":
                    metas.append(meta)
                if name == IDENTITY:
                    identity_meta = meta
            if have_numpyro:
                wall, out = timed([sys.executable, "scripts/numpyro_nuts.py"], {})
                walls["numpyro"].append(wall)
                ess["numpyro"] = json.loads(out)["ess_bulk_min"]
            wall, meta, _ = headbayes(["+experiment=sin_head"], tmp)
            head_walls.append(wall)
            head_metas.append(meta)
            print(f"repeat {i}: {[w[-1] for w in walls.values() if w]}", file=sys.stderr)
    median = {k: statistics.median(v) for k, v in walls.items() if v}
    lines = ["## NUTS from a cold start against NumPyro, and where a job's time goes", "",
             f"`python scripts/bench_numpyro.py --repeats {args.repeats}` (part of `make "
             f"bench`); the machine of the other sections. Compilation cache off for headbayes "
             f"(every run compiles, as the script does); wall time of the whole process, "
             f"median of {args.repeats}, the commands alternating.", "",
             "| command | wall (s) | min bulk ESS | ratio to NumPyro |", "|---|---:|---:|---:|"]
    for name, wall in median.items():
        label = (f"`python scripts/numpyro_nuts.py` (NumPyro {_version('numpyro')})"
                 if name == "numpyro"
                 else f"`headbayes run +experiment=sin_head_nuts`{name[len('headbayes'):]}")
        ratio = f"{wall / median['numpyro']:.2f}x" if "numpyro" in median else "—"
        shown_ess = ess.get(name)
        lines.append(f"| {label} | {wall:.2f} | {shown_ess:.0f} | {ratio} |")
    if not have_numpyro:
        lines += ["", "NumPyro is not installed here: `pip install 'headbayes[bench]'`."]
    lines += ["", "Target (issue 15): headbayes ≤ 0.6x the NumPyro script.", ""]
    lines += stage_table("(q) `sin_head_nuts`, cache off", metas, walls["headbayes"])
    busy = statistics.median(m["cpu_s"] / w for m, w in zip(metas, walls["headbayes"]))
    lines += [_stage_notes(metas[0], identity_meta, busy), ""]
    lines += stage_table("`sin_head`, cache off", head_metas, head_walls)
    emit("\n".join(lines), args.output, "numpyro")


def _per_step(meta: dict) -> dict:
    """{phase: (gradient evaluations, per chain step)} of a `sin_head_nuts` job (4 chains,
    thin 1)."""
    chains = 4
    kept = meta["num_draws"] // chains
    chain_steps = {"warmup": chains * (meta["num_steps"] - kept), "sampling": chains * kept}
    return {k: (meta["counts"][f"grad_evals_{k}"], meta["counts"][f"grad_evals_{k}"] / n)
            for k, n in chain_steps.items()}


def _stage_notes(meta: dict, identity: dict, busy: float) -> str:
    """What the stages of a `sin_head_nuts` job hold, with its gradient evaluations and those
    of the run adapting from the identity; `busy`: its CPU seconds per wall second."""
    per = _per_step(meta)
    start = ""
    if identity:
        from_identity = _per_step(identity)["warmup"]
        start = (f" (from the identity, the row above with `sampler.mass_init=identity`: "
                 f"{from_identity[0]:,}, {from_identity[1]:.0f} per chain step, as NUTS builds "
                 f"its deepest trees on this ill-conditioned posterior until the first slow "
                 f"window ends; NumPyro's warmup starts there too)")
    return (f"`compile` is the chunk program's compile, once the model and the chains' start "
            f"are built (`model`, `prepare`: their own small programs); the process used "
            f"{busy:.2f} CPU seconds per second (median). `warmup` takes "
            f"{per['warmup'][0]:,} gradient "
            f"evaluations ({per['warmup'][1]:.1f} per chain step) against sampling's "
            f"{per['sampling'][0]:,} ({per['sampling'][1]:.1f} per chain step): the adaptation "
            f"starts from the inverse Hessian of the log density (`sampler.mass_init: hessian`), "
            f"this linear Gaussian head's posterior covariance{start}. `plots` is the wait for "
            f"the plot worker (`headbayes.report.plotworker`), a second process that "
            f"`headbayes run` starts first thing and that imports matplotlib meanwhile. The "
            f"process's exit is not a stage: headbayes leaves without the "
            f"interpreter's teardown (`cli._leave`; freeing XLA's client and every module's "
            f"objects), so the process's wall time exceeds `wall_s` by little more than the "
            f"interpreter's start.")


def _version(name: str) -> str:
    from importlib import metadata

    return metadata.version(name)


if __name__ == "__main__":
    main()
