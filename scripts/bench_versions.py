"""headbayes at another commit against this tree, in one run, alternating (a refactor's guard).

For each side, median wall seconds of whole processes: `sin_head` with no compilation cache
(cold) and with a warm one, `sin_head_nuts` cold, a warm 4-job sweep, and a run stopped after
its first chunk and resumed; beside them the same run's baselines (`scripts/minimal_sgld.py`
and NumPyro's NUTS, `scripts/numpyro_nuts.py`), so each side's ratio to its baseline is
measured under the same machine load. The other commit is checked out in a temporary git
worktree and run with PYTHONPATH pointing at its `src`.

    python scripts/bench_versions.py --old c432a03 --repeats 5

Writes the `versions` section of docs/benchmarks.md (use --output - to print only).
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from bench import measured  # noqa: E402
from bench_sections import emit  # noqa: E402
SIN = ["run", "+experiment=sin_head"]
NUTS = ["run", "+experiment=sin_head_nuts"]
SWEEP = ["run", "-m", "+experiment=sin_head", "sampler.step_size=3e-4,1e-3", "seed=0,1",
         "report.plots=false"]


def wall(cmd: list[str], env: dict) -> float:
    """Wall seconds of one process (`bench.measured`, run from the repository root)."""
    return measured(cmd, env)[0]


def side(src: Path, tmp: Path, name: str) -> dict:
    """The commands of one side, each a closure timing one process."""
    base = {"PYTHONPATH": str(src), "HEADBAYES_OUTPUT_DIR": str(tmp / name)}
    cold = {**base, "HEADBAYES_COMPILE_CACHE": ""}
    warm = {**base, "HEADBAYES_COMPILE_CACHE": str(tmp / name / "cache")}
    py = [sys.executable, "-m", "headbayes"]
    count = iter(range(10**6))

    def run(args, env):
        return lambda: wall([*py, *args, f"hydra.run.dir={tmp / name / str(next(count))}"], env)

    def sweep():
        return wall([*py, *SWEEP, f"hydra.sweep.dir={tmp / name / str(next(count))}"], warm)

    return {"sin_head cold": run(SIN, cold), "sin_head warm": run(SIN, warm),
            "sin_head_nuts cold": run(NUTS, cold), "sweep of 4, warm": sweep}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="the commit to compare with")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run(["git", "worktree", "add", "--detach", str(tmp / "old"), args.old],
                       cwd=ROOT, check=True, capture_output=True)
        try:
            sides = {"old": side(tmp / "old" / "src", tmp, "old"),
                     "new": side(ROOT / "src", tmp, "new")}
            env = {"PYTHONPATH": str(ROOT / "src")}
            baselines = {
                "minimal script": lambda: wall([sys.executable, "scripts/minimal_sgld.py"], env),
                "NumPyro NUTS": lambda: wall([sys.executable, "scripts/numpyro_nuts.py"], env)}
            for fns in sides.values():  # fill the warm caches
                fns["sin_head warm"]()
                fns["sweep of 4, warm"]()
            times = {(s, k): [] for s in sides for k in sides[s]}
            times.update({("base", k): [] for k in baselines})
            for i in range(args.repeats):
                order = ["old", "new"] if i % 2 == 0 else ["new", "old"]
                for key in sides["old"]:
                    for s in order:
                        times[(s, key)].append(sides[s][key]())
                for key, fn in baselines.items():
                    times[("base", key)].append(fn())
                print(f"round {i + 1} of {args.repeats} done", file=sys.stderr, flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tmp / "old")],
                           cwd=ROOT, capture_output=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    lines = [f"## A refactor's guard: {args.old} against this tree", "",
             f"`python scripts/bench_versions.py --old {args.old} --repeats {args.repeats}`: "
             f"whole processes, the two trees alternating, median of {args.repeats} each; "
             f"beside them this run's baselines.", "",
             f"| measure | {args.old} (s) | this tree (s) | new / old |", "|---|---:|---:|---:|"]
    for key in sides["old"]:
        lines.append(f"| {key} | {med[('old', key)]:.2f} | {med[('new', key)]:.2f} | "
                     f"{med[('new', key)] / med[('old', key)]:.3f} |")
    for key in baselines:
        lines.append(f"| baseline: {key} | {med[('base', key)]:.2f} | | |")
    lines += ["", "| ratio to its baseline | old | new |", "|---|---:|---:|"]
    for key, base in (("sin_head cold", "minimal script"), ("sin_head warm", "minimal script"),
                      ("sin_head_nuts cold", "NumPyro NUTS")):
        lines.append(f"| {key} / {base} | {med[('old', key)] / med[('base', base)]:.3f} | "
                     f"{med[('new', key)] / med[('base', base)]:.3f} |")
    emit("\n".join(lines), args.output, "versions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
