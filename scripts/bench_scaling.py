"""`make bench` (quick) / `make bench-full`: how the cost of a step grows, next to plain JAX.

Every row times headbayes' compiled chunk loop (the program `headbayes run` compiles) and a
hand-written plain JAX + blackjax SGLD loop doing the same work (same data, model, minibatch
draws and fold_in keys), in the same process, alternating, median of --repeats timings each. The
baseline comes in two forms: `plain` recomputes the frozen body every step (what a script
written around a full model does), `plain cached` samples on precomputed body features.

(e) chains 1 -> 1024 on sin_head (microseconds per chain-step);
(f) width, (g) depth, (h) data size (batch 256): head-only SGLD, cached against uncached;
(i) the target row: width 1024, depth 3, 10^5 points, batch 256;
(j) bytes on disk of a width-1024 depth-3 head-only chain against full-pytree storage;
(m) `headbayes run +experiment=sin_head` end to end with 1 and 1024 chains: wall time and
    peak memory (sampling, report and plots; warm compilation cache).

Writes the `scaling-MODE` section of docs/benchmarks.md and docs/scaling_MODE.png
(use --output - to print only). JAX picks the device, so it runs unchanged on a GPU.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
MODES = {
    "quick": {"chains": [1, 16, 128, 1024], "width": [16, 256, 1024], "depth": [1, 2, 4],
              "data": [32, 1_000, 100_000], "target_seconds": 0.2, "keep": 20},
    "full": {"chains": [1, 4, 16, 64, 256, 1024], "width": [16, 64, 256, 1024, 4096],
             "depth": [1, 2, 3, 4, 8], "data": [32, 1_000, 10_000, 100_000, 1_000_000],
             "target_seconds": 1.0, "keep": 100},
}
BATCH = 256


def calibrated(run, target_seconds: float) -> int:
    """Steps for one timing of `run(steps)` to take about `target_seconds` (after a first call)."""
    run(2)
    start = time.perf_counter()
    run(8)
    rate = (time.perf_counter() - start) / 8
    return max(8, int(target_seconds / max(rate, 1e-9)))


def timed(run, steps: int) -> float:
    start = time.perf_counter()
    run(steps)
    return (time.perf_counter() - start) / steps


def overrides(width, depth, n, chains, cached) -> list[str]:
    batch = BATCH if n > BATCH else 0
    return ["+experiment=sin_head", f"model.width={width}", f"model.depth={depth}",
            f"data.n_train={n}", f"sampler.num_chains={chains}", f"sampler.batch_size={batch}",
            f"model.cache_features={str(cached).lower()}", "sampler.step_size=1e-6"]


def headbayes_runner(width, depth, n, chains, cached):
    """`run(steps)` on headbayes' compiled loop (one slot of `steps` steps)."""
    import jax

    import headbayes
    from headbayes.engine import runner
    from headbayes.job.plan import build_position, prepare_loop

    cfg = headbayes.compose(overrides(width, depth, n, chains, cached))
    loop, _ = prepare_loop(cfg, *build_position(cfg))
    compiled, _ = runner.compile_loop(*loop, 1)

    def run(steps):
        jax.block_until_ready(compiled(loop.state, loop.chain_keys, np.int32(0),
                                       np.array([steps], np.int32), loop.problem, loop.hyper))

    return run


def baseline_runner(width, depth, n, chains, cached):
    """`run(steps)` on a hand-written plain JAX + blackjax loop doing the same work."""
    import blackjax
    import jax
    import jax.numpy as jnp

    keys = jax.random.split(jax.random.PRNGKey(0), depth + 1)
    sizes = [1] + [width] * depth

    def linear(key, fan_in, fan_out):
        wkey, bkey = jax.random.split(key)
        bound = 1 / np.sqrt(fan_in)
        return (jax.random.uniform(wkey, (fan_out, fan_in), minval=-bound, maxval=bound),
                jax.random.uniform(bkey, (fan_out,), minval=-bound, maxval=bound))

    hidden = [linear(keys[i], sizes[i], sizes[i + 1]) for i in range(depth)]
    head = linear(keys[-1], sizes[-1], 1)
    x = jnp.linspace(-1, 1, n)[:, None]
    y = jnp.sin(jnp.pi * x)

    def body(hidden, h):
        for w, b in hidden:
            h = jnp.tanh(h @ w.T + b)
        return h

    if cached:
        x = jax.jit(body)(hidden, x)

    def logdensity(head, batch):
        xb, yb, hidden = batch
        w, b = head
        h = xb if cached else body(hidden, xb)
        r = (h @ w.T + b - yb) / 0.05
        return -jnp.mean(r**2) - (jnp.sum(w**2) + jnp.sum(b**2)) / 200.0

    sgld = blackjax.sgld(jax.grad(logdensity))

    @jax.jit
    def sample(heads, chain_keys, x, y, hidden, steps):
        def chain(head, chain_key):
            def step(t, head):
                key = jax.random.fold_in(chain_key, t)
                if n > BATCH:
                    batch_key, key = jax.random.split(key)
                    idx = jax.random.randint(batch_key, (BATCH,), 0, n)
                    batch = (x[idx], y[idx], hidden)
                else:
                    batch = (x, y, hidden)
                return sgld.step(key, head, batch, 1e-6)

            return jax.lax.fori_loop(0, steps, step, head)

        return jax.vmap(chain)(heads, chain_keys)

    heads = jax.tree.map(lambda a: jnp.broadcast_to(a, (chains,) + a.shape), head)
    chain_keys = jax.random.split(jax.random.PRNGKey(1), chains)

    def run(steps):
        jax.block_until_ready(sample(heads, chain_keys, x, y, hidden, np.int32(steps)))

    return run


def measure(width, depth, n, chains, kinds, mode, repeats) -> dict:
    """µs per step of each kind in `kinds` ('headbayes', 'headbayes uncached', 'plain',
    'plain cached'), all at one size."""
    makers = {"headbayes": (headbayes_runner, True),
              "headbayes uncached": (headbayes_runner, False),
              "plain": (baseline_runner, False), "plain cached": (baseline_runner, True)}
    target = MODES[mode]["target_seconds"]
    runs = {}
    for kind in kinds:
        maker, cached = makers[kind]
        run = maker(width, depth, n, chains, cached)
        runs[kind] = (run, calibrated(run, target))
    times = {kind: [] for kind in kinds}
    for _ in range(repeats):  # alternate, so drifts of the machine hit every kind alike
        for kind, (run, steps) in runs.items():
            times[kind].append(timed(run, steps))
    return {kind: statistics.median(t) * 1e6 for kind, t in times.items()}


ALL = ("headbayes", "headbayes uncached", "plain", "plain cached")


def storage(keep: int) -> dict:
    """Bytes of the chain/ files of a width-1024 depth-3 head-only run, against the same draws
    stored as full pytrees (every leaf, every draw: the seed's layout), both written here."""
    import headbayes
    from headbayes.core.store import load_chain_and_info, read_npz

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        cfg = headbayes.compose(["+experiment=sin_head", "model.width=1024", "model.depth=3",
                                 f"sampler.keep={keep}", "sampler.warmup=10", "sampler.thin=1",
                                 "sampler.step_size=1e-6"])
        os.environ.setdefault("HEADBAYES_COMPILE_CACHE", "")
        headbayes.run(cfg, run_dir, report=False)
        chain_bytes = sum(f.stat().st_size for f in (run_dir / "chain").glob("part-*.npz"))
        draws, _ = load_chain_and_info(run_dir)
        params = read_npz(run_dir / "params.npz")
        full = {path: draws[path][0] if path in draws
                else np.broadcast_to(value, (keep,) + value.shape)
                for path, value in params.items()}
        np.savez(Path(tmp) / "full.npz", **full)
        full_bytes = (Path(tmp) / "full.npz").stat().st_size
    return {"keep": keep, "chain_bytes": chain_bytes, "full_bytes": full_bytes,
            "sampled": sum(draws[p][0, 0].size for p in draws),
            "total": sum(v.size for v in params.values())}


def run_all(mode: str, repeats: int) -> dict:
    m = MODES[mode]
    # first, while this process is small: a child's peak RSS counts what it inherits at fork
    results = {"e2e_chains": end_to_end_chains(), "chains": [], "width": [], "depth": [],
               "data": []}
    for chains in m["chains"]:
        results["chains"].append((chains, measure(16, 2, 32, chains, ALL, mode, repeats)))
        print(f"chains {chains}: {results['chains'][-1][1]}", file=sys.stderr)
    for width in m["width"]:
        results["width"].append((width, measure(width, 3, 10_000, 1, ALL, mode, repeats)))
        print(f"width {width}: {results['width'][-1][1]}", file=sys.stderr)
    for depth in m["depth"]:
        results["depth"].append((depth, measure(256, depth, 10_000, 1, ALL, mode, repeats)))
        print(f"depth {depth}: {results['depth'][-1][1]}", file=sys.stderr)
    for n in m["data"]:
        results["data"].append((n, measure(16, 2, n, 1, ALL, mode, repeats)))
        print(f"data {n}: {results['data'][-1][1]}", file=sys.stderr)
    results["target"] = measure(1024, 3, 100_000, 1, ALL, mode, repeats)
    print(f"target: {results['target']}", file=sys.stderr)
    results["storage"] = storage(m["keep"])
    return results


def end_to_end_chains() -> list:
    """(chains, wall s, peak MB, timings from meta.json) of whole runs, warm cache."""
    import json

    from bench import measured

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {"HEADBAYES_OUTPUT_DIR": tmp, "HEADBAYES_COMPILE_CACHE": f"{tmp}/cache"}
        for chains in (1, 1024):
            args = [sys.executable, "-m", "headbayes", "run", "+experiment=sin_head",
                    f"sampler.num_chains={chains}"]
            measured(args + [f"hydra.run.dir={tmp}/fill{chains}"], env)  # fills the cache
            wall, peak = measured(args + [f"hydra.run.dir={tmp}/run{chains}"], env)
            meta = json.loads((Path(tmp) / f"run{chains}" / "meta.json").read_text())
            rows.append((chains, wall, peak, meta["timings"]["sampling_s"]))
    return rows


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("chains", "chains (sin_head)", True), ("width", "width (depth 3, 10^4 points)",
              False), ("depth", "depth (width 256, 10^4 points)", False),
              ("data", "training points (width 16, batch 256)", False)]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    styles = {"headbayes": "C0-o", "headbayes uncached": "C1-s", "plain": "C1--x",
              "plain cached": "C0--x"}
    for ax, (key, label, per_chain) in zip(axes, panels):
        sizes = [size for size, _ in results[key]]
        for kind, style in styles.items():
            values = [row[kind] / (size if per_chain else 1) for size, row in results[key]]
            ax.plot(sizes, values, style, label=kind)
        ax.set(xscale="log", yscale="log", xlabel=label,
               ylabel="µs per chain-step" if per_chain else "µs per step")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def table(results: dict, key: str, label: str, per_chain: bool = False) -> list[str]:
    unit = "µs per chain-step" if per_chain else "µs per step"
    lines = [f"| {label} | headbayes | plain cached | headbayes uncached | plain | "
             "uncached / cached |", "|---:|---:|---:|---:|---:|---:|"]
    for size, row in results[key]:
        d = size if per_chain else 1
        lines.append(f"| {size:,} | {row['headbayes'] / d:.3g} | {row['plain cached'] / d:.3g} | "
                     f"{row['headbayes uncached'] / d:.3g} | {row['plain'] / d:.3g} | "
                     f"{row['headbayes uncached'] / row['headbayes']:.1f}× |")
    return [f"({unit})", ""] + lines


def render(results: dict, mode: str, info: str, command: str) -> str:
    chains = dict(results["chains"])
    one, many = chains[1], chains[max(chains)]
    per_chain = many["headbayes"] / max(chains) / one["headbayes"]
    base_per_chain = many["plain"] / max(chains) / one["plain"]
    t, s = results["target"], results["storage"]
    lines = [
        f"## Scaling ({mode} mode)", "",
        f"Machine: {info}. Command: `{command}`. Every figure: median of the timings of one",
        "run, the kinds alternating; `headbayes` is the compiled chunk loop of `headbayes run`,",
        "`plain` a hand-written JAX + blackjax SGLD loop (fold_in keys, same minibatch draws)",
        "that recomputes the frozen body every step, `plain cached` the same loop on precomputed",
        "body features,",
        "`headbayes uncached` is `model.cache_features=false`. Head-only SGLD throughout.", "",
        f"![scaling](scaling_{mode}.png)", "",
        "(i) Target: width 1024, depth 3, 10^5 points, batch 256, head-only SGLD:",
        f"cached {t['headbayes']:.3g} µs per step, uncached {t['headbayes uncached']:.4g} µs: "
        f"**{t['headbayes uncached'] / t['headbayes']:.0f}×** (target ≥ 50×); plain "
        f"{t['plain']:.4g} µs, plain cached {t['plain cached']:.3g} µs.", "",
        f"(e) {max(chains)} chains of sin_head: a chain-step costs **{per_chain:.3f}×** a "
        f"single chain's step (target ≤ 0.1); the plain vmapped blackjax loop "
        f"{base_per_chain:.3f}×; headbayes / plain at {max(chains)} chains: "
        f"{many['headbayes'] / many['plain']:.2f}× (cached plain: "
        f"{many['headbayes'] / many['plain cached']:.2f}×).", "",
    ]
    lines += ["### (e) chains (sin_head: width 16, depth 2, 32 points, full batch)", ""]
    lines += table(results, "chains", "chains", per_chain=True) + [""]
    lines += ["### (f) width (depth 3, 10^4 points, batch 256)", ""]
    lines += table(results, "width", "width") + [""]
    lines += ["### (g) depth (width 256, 10^4 points, batch 256)", ""]
    lines += table(results, "depth", "depth") + [""]
    lines += ["### (h) data size (width 16, depth 2, batch 256; full batch up to 256 points)", ""]
    lines += table(results, "data", "points") + [""]
    lines += [
        "### (j) storage: width 1024, depth 3, head-only, " f"{s['keep']} draws", "",
        f"chain/ holds the {s['sampled']:,} sampled numbers per draw: {s['chain_bytes']:,} bytes; "
        f"the same draws as full pytrees ({s['total']:,} numbers per draw, the seed's layout): "
        f"{s['full_bytes']:,} bytes: **{s['full_bytes'] / s['chain_bytes']:.0f}× smaller** "
        "(target ≥ 1000×).", "",
        "### (m) many chains end to end (`headbayes run +experiment=sin_head "
        "sampler.num_chains=N`, warm compilation cache)", "",
        "| chains | draws | wall s | sampling s | peak memory MB |", "|---:|---:|---:|---:|---:|",
    ] + [f"| {c:,} | {c * 400:,} | {w:.2f} | {t:.2f} | {m:.0f} |"
         for c, w, m, t in results["e2e_chains"]] + [
        "",
        "Kept draws are copied to the host chunk by chunk (at most 64 MB of draws a chunk);",
        "the rest of the wall time is start-up, the report (R-hat, ESS and the predictive",
        "quantiles over every draw) and the plots.",
    ]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=MODES, default="quick")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=str(ROOT / "docs/benchmarks.md"))
    args = parser.parse_args()
    from bench import machine
    from bench_sections import write_section

    results = run_all(args.mode, args.repeats)
    command = "make bench" if args.mode == "quick" else "make bench-full"
    section = render(results, args.mode, machine(), command)
    if args.output == "-":
        print(section)
        return
    plot(results, ROOT / f"docs/scaling_{args.mode}.png")
    write_section(Path(args.output), f"scaling-{args.mode}", section)


if __name__ == "__main__":
    main()
