"""`make bench`: the report's predictive on a 1024-chain `sin_head` run (409,600 draws), through
the model in JAX (`headbayes.engine.predictive`, what `report` and `predict` use) against the numpy
path the report used before (the baseline, written out below), both measured in the same
run.

Each measurement is a fresh process that loads the run directory and computes the function
draws on the eval grid (101 points) and the 5%/95% band over all draws (imports included);
wall time and peak memory (max RSS), median of --repeats, the two alternating. The whole
`headbayes report` command is timed the same way for context. Writes the `report` section of
docs/benchmarks.md (use --output - to print only).
"""

from headbayes.config.saved import load_config
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def numpy_forward(params: dict, x, depth: int):
    """The previous release's report path: the tanh MLP in numpy, sampled leaves with leading
    (chain, draw) axes, frozen ones unbatched (they broadcast: frozen layers computed once)."""
    import numpy as np

    h = x
    for i in range(depth + 1):
        name = f"hidden_layers.{i}" if i < depth else "output_layer"
        h = h @ np.swapaxes(params[f"{name}.weight"], -1, -2) + params[f"{name}.bias"][..., None, :]
        if i < depth:
            h = np.tanh(h)
    return h


def numpy_summary(f_draws):
    """The previous release's band: every draw in float64 at once, then the quantiles."""
    import numpy as np

    pooled = np.asarray(f_draws, np.float64).reshape((-1,) + f_draws.shape[2:])
    lo, hi = np.quantile(pooled, [0.05, 0.95], axis=0)
    return {"band_median": float(np.median(hi - lo))}


def predictive(kind: str, run_dir: Path) -> None:
    """Load the run and compute the band of its function draws on the eval grid."""
    started = time.perf_counter()
    from headbayes.report import metrics  # noqa: F401 (imported on both paths alike)
    from headbayes.datasets import make_dataset
    from headbayes.core.rundir import RunFiles

    files = RunFiles(run_dir)
    cfg = load_config(files)
    params, (chain, _) = files.read_params(), files.chain()
    data = make_dataset(cfg.data)
    if kind == "numpy":
        f = numpy_forward({**params, **chain}, data.x_eval, cfg.model.depth)
        summary = numpy_summary(f)
    else:
        from headbayes.engine.predictive import function_draws

        f = function_draws(cfg, params, chain, data.x_eval)
        summary = metrics.predictive_summary(f, data.f_eval)
    print(f"{kind}: {f.shape} band_median {summary['band_median']:.6f} "
          f"in {time.perf_counter() - started:.2f} s", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--predict", choices=("numpy", "jax"), help=argparse.SUPPRESS)
    parser.add_argument("run_dir", nargs="?", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.predict:  # one measured child process
        predictive(args.predict, args.run_dir)
        return
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench import machine, measured
    from bench_sections import write_section

    results = {"numpy": [], "jax": [], "report": []}
    with tempfile.TemporaryDirectory() as tmp:
        env = {"HEADBAYES_OUTPUT_DIR": tmp, "HEADBAYES_COMPILE_CACHE": f"{tmp}/cache"}
        run_dir = Path(tmp) / "run"
        measured([sys.executable, "-m", "headbayes", "run", "+experiment=sin_head",
                  "sampler.num_chains=1024", f"hydra.run.dir={run_dir}"], env)
        script = str(ROOT / "scripts" / "bench_report.py")
        for _ in range(args.repeats):
            for kind in ("numpy", "jax"):
                results[kind].append(measured([sys.executable, script, "--predict", kind,
                                               str(run_dir)], env))
            results["report"].append(measured([sys.executable, "-m", "headbayes", "report",
                                               str(run_dir)], env))
    medians = {k: (statistics.median(w for w, _ in v), statistics.median(m for _, m in v))
               for k, v in results.items()}
    n, j, r = medians["numpy"], medians["jax"], medians["report"]
    text = f"""## Report through the model: 1024-chain `sin_head` (409,600 draws)

Produced by `make bench` (`python scripts/bench_report.py --repeats {args.repeats}`), the
baseline measured in the same run. Machine: {machine()}.

A fresh process loads the run directory and computes the function at every draw on the eval
grid (101 points) and the 5%/95% band over all draws, imports included. "JAX" is what `report`
and `predict` do now (`headbayes.engine.predictive`: the model itself, frozen stages once, batches
of draws under 256 MB; the band a block of points at a time, `metrics.predictive_summary`); "numpy"
is the previous release's path, kept in `scripts/bench_report.py` as the baseline: the MLP-only
numpy forward pass and the band over all draws converted to float64 at once. Median of
{args.repeats}, alternating; memory is peak RSS.

| predictive path | wall (s) | peak memory (MB) |
|---|---:|---:|
| numpy forward (previous release, MLP only) | {n[0]:.2f} | {n[1]:.0f} |
| through the model in JAX (any model) | {j[0]:.2f} | {j[1]:.0f} |
| ratio | {j[0] / n[0]:.2f}x | {j[1] / n[1]:.2f}x |
| whole `headbayes report` (JAX path, all metrics and plots) | {r[0]:.2f} | {r[1]:.0f} |

Target: the JAX path no slower and no larger than the numpy one.
"""
    print(text)
    if args.output != "-":
        write_section(Path(args.output), "report", text)


if __name__ == "__main__":
    main()
