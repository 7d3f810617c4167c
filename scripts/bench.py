"""`make bench`: headbayes against a minimal hand-written script, measured in the same run.

(a) End-to-end wall time and peak memory (max RSS) of `headbayes run +experiment=sin_head` and
    of `scripts/minimal_sgld.py`, alternating, median of --repeats runs each.
(b) Steady-state microseconds per SGLD step: headbayes' compiled chunk loop against one
    hand-written `lax.scan`, same number of steps, median of --repeats timings after warm-up.
Writes docs/benchmarks.md (use --output - to print only).
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


def measured(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one subprocess."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd} failed: {proc.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def end_to_end(repeats: int) -> dict:
    results = {"headbayes": [], "minimal": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            results["headbayes"].append(measured(
                [sys.executable, "-m", "headbayes", "run", "+experiment=sin_head",
                 f"hydra.run.dir={tmp}/run{i}"]))
            results["minimal"].append(measured([sys.executable, "scripts/minimal_sgld.py"]))
    return {name: (statistics.median(w for w, _ in runs), statistics.median(m for _, m in runs))
            for name, runs in results.items()}


def _minimal_module():
    spec = importlib.util.spec_from_file_location("minimal_sgld", ROOT / "scripts/minimal_sgld.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up (compilation)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def per_step(num_steps: int, repeats: int) -> dict:
    import jax

    from headbayes import cli, runner
    from headbayes.pipeline import build_position, prepare_loop

    cfg = cli._compose(["+experiment=sin_head"])
    s = cfg.sampler
    loop = prepare_loop(cfg, *build_position(cfg))
    slots = runner.choose_slots(s.keep, s.num_chains, 17)
    compiled, _ = runner.compile_loop(loop.sampler, loop.state, loop.chain_keys, loop.problem,
                                      loop.hyper, slots)

    def headbayes_loop():
        for _, state, _ in runner.run_loop(compiled, loop.state, loop.chain_keys, loop.problem,
                                           loop.hyper, warmup=num_steps - s.keep * s.thin,
                                           keep=s.keep, thin=s.thin, slots=slots):
            pass
        jax.block_until_ready(state)

    minimal = _minimal_module()
    head, data, logdensity, _ = minimal.setup()
    scan = minimal.make_steps(logdensity, data, num_steps)
    key = jax.random.PRNGKey(0)

    def hand_written():
        jax.block_until_ready(scan(head, key))

    return {"headbayes": _median_time(headbayes_loop, repeats) / num_steps * 1e6,
            "minimal": _median_time(hand_written, repeats) / num_steps * 1e6}


def render(info: str, e2e: dict, steps: dict, args) -> str:
    h, m = e2e["headbayes"], e2e["minimal"]
    return f"""# Benchmarks

Produced by `make bench` (`python scripts/bench.py --repeats {args.repeats} --steps {args.steps}`);
every figure below comes from one run of that command, the baseline measured in the same run.

Machine: {info}.

## (a) End to end: `headbayes run +experiment=sin_head` vs `scripts/minimal_sgld.py`

The minimal script is the seed experiment by hand in plain JAX + blackjax: same data, model,
2300 SGLD steps in one `lax.scan`, same predictive figures; no config, files, report or plots.
headbayes also composes the Hydra config, writes the run directory, recomputes the report from
disk and draws two PNGs. Median of {args.repeats} runs each, alternating; memory is peak RSS.

| command | wall (s) | peak memory (MB) |
|---|---:|---:|
| `headbayes run +experiment=sin_head` | {h[0]:.2f} | {h[1]:.0f} |
| `python scripts/minimal_sgld.py` | {m[0]:.2f} | {m[1]:.0f} |
| ratio | {h[0] / m[0]:.2f}x | {h[1] / m[1]:.2f}x |

Targets: wall ≤ 1.3x the minimal script, peak memory ≤ 400 MB.

## (b) Steady state: microseconds per SGLD step

{args.steps} steps of the seed's sampler (the seed's keep and thin, the rest warmup) after a
warm-up call; median of {args.repeats}. headbayes runs its chunked loop as `headbayes run` does
(warmup chunks growing to about 0.5 s, one chunk of 400 kept draws, finiteness tracked every
step, draws copied to the host); the baseline is one `lax.scan` over the same number of steps.

| loop | µs per step |
|---|---:|
| headbayes chunked loop | {steps['headbayes']:.2f} |
| hand-written `lax.scan` | {steps['minimal']:.2f} |
| ratio | {steps['headbayes'] / steps['minimal']:.2f}x |

Target: ≤ 1.1x the hand-written scan.
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    e2e = end_to_end(args.repeats)
    steps = per_step(args.steps, args.repeats)
    text = render(machine(), e2e, steps, args)
    if args.output == "-":
        print(text)
    else:
        Path(args.output).write_text(text)
        print(text)


if __name__ == "__main__":
    main()
