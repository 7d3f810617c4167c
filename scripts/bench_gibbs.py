"""`make bench`: mask groups (sampler=gibbs) against their single-group parts, in one run.

(m) Gibbs overhead: the steady-state seconds per sweep of `sin_gibbs` (weights by NUTS, bias
    by MALA) against the sum of the seconds per step of NUTS on the weights alone (bias frozen)
    and MALA on the bias alone (weights frozen), same likelihood, prior, chains and settings,
    in one process: each program compiled as `headbayes run` compiles it, its 500 warmup steps
    run, then SAMPLING_STEPS steps timed, the programs alternating, best of `--repeats`. NUTS
    alone runs twice: with its own adaptation, and with the step sizes and mass matrices the
    sweep's weights group adapted to (the same kernel, so the same work per step: the frozen
    block's value does not change the other block's conditional covariance, a Gaussian). The
    overhead of the sweep is its cost over the sum with the same kernels; the rest of the gap
    to the separately adapted NUTS is the adaptation (the group adapts while the bias moves).
(n) Sampling efficiency on sin_gibbs's posterior: sin_gibbs against single-group NUTS on the
    whole head (dense mass): bulk ESS (the minimum over the 17 numbers) per gradient
    evaluation of the sampling phase, with the exact-distance figures.
(o) The Gibbs examples of docs/patterns.md: sin_gibbs and sin_gibbs_seed as shipped.
Writes the `gibbs` section of docs/benchmarks.md (use --output - to print only).
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_runs import headbayes_run  # noqa: E402
from bench_sections import emit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLING_STEPS = 20000
POSTERIOR = ["likelihood.sigma=0.5", "likelihood.reduction=sum", "prior.sigma=0.3"]
CHAINS = ["sampler.num_chains=4", "sampler.init_jitter=0.1", "sampler.warmup=500",
          "sampler.thin=1"]
STEADY = {
    "gibbs sweep (weights NUTS + bias MALA)": ["+experiment=sin_gibbs"],
    "NUTS step, weights only": ["+experiment=sin_head", "sampler=nuts", *POSTERIOR,
                                "mask.include=[output_layer.weight]", *CHAINS],
    "MALA step, bias only": ["+experiment=sin_head", "sampler=mala", *POSTERIOR,
                             "mask.include=[output_layer.bias]", "sampler.step_size=0.01",
                             *CHAINS],
}
EFFICIENCY = {
    "sin_gibbs (weights NUTS + bias MALA)": ["+experiment=sin_gibbs"],
    "NUTS on the whole head": ["+experiment=sin_head", "sampler=nuts", *POSTERIOR, *CHAINS,
                               "sampler.mass_matrix=dense", "sampler.keep=2000"],
}


def run(overrides: list[str], tmp: str) -> tuple[dict, dict]:
    """(meta.json, metrics.json) of `headbayes run OVERRIDES` (plots off), in a new
    directory of `tmp`."""
    files = headbayes_run(overrides, Path(tmp) / f"run{len(list(Path(tmp).iterdir()))}")
    return files["meta"], files["metrics"]


def warmed_up(overrides: list[str]):
    """(compiled chunk program, loop state after the warmup, loop) of a config, in process."""
    import headbayes
    from headbayes.engine import runner
    from headbayes.datasets import make_dataset
    from headbayes.job.plan import build_position, prepare_loop

    cfg = headbayes.compose(overrides)
    params, static, mask = build_position(cfg)
    loop, _ = prepare_loop(cfg, params, static, mask, make_dataset(cfg.data))
    compiled, _ = runner.compile_loop(*loop, 1)
    state = loop.state
    for _, state, _, _ in runner.run_loop(compiled, loop.state, loop.chain_keys, loop.problem,
                                          loop.hyper, warmup=cfg.sampler.warmup, keep=1,
                                          thin=1, slots=1):
        pass
    return compiled, state, loop


def per_step(programs: dict, repeats: int) -> dict:
    """{name: (ms per step, gradient evaluations per step and chain)}, best of `repeats`."""
    import time

    import jax
    import numpy as np

    counts = np.array([SAMPLING_STEPS], np.int32)
    seconds, evals = {name: [] for name in programs}, {}
    for _ in range(repeats):
        for name, (compiled, state, loop) in programs.items():
            start = time.perf_counter()
            _, (_, sums) = jax.block_until_ready(compiled(
                state, loop.chain_keys, np.int32(10**6), counts, loop.problem, loop.hyper))
            seconds[name].append(time.perf_counter() - start)
            evals[name] = float(np.mean(np.asarray(sums.grad_evals)[:, 0])) / SAMPLING_STEPS
    return {name: (1e3 * min(s) / SAMPLING_STEPS, evals[name]) for name, s in seconds.items()}


def overhead_lines(repeats: int) -> list[str]:
    programs = {name: warmed_up(o) for name, o in STEADY.items()}
    _, sweep_state, _ = programs["gibbs sweep (weights NUTS + bias MALA)"]
    weights = sweep_state.sampler_state.groups[0]  # the sweep's adapted NUTS kernel
    compiled, state, loop = programs["NUTS step, weights only"]
    same = state._replace(sampler_state=state.sampler_state._replace(
        step_size=weights.step_size, inverse_mass_matrix=weights.inverse_mass_matrix))
    programs["NUTS step, weights only, the sweep's adapted kernel"] = (compiled, same, loop)
    steps = per_step(programs, repeats)
    sweep, nuts, mala, nuts_same = (steps[name][0] for name in programs)
    lines = [f"(m) Per step, {SAMPLING_STEPS} steps of 4 chains after the warmup, best of "
             f"{repeats}, the programs alternating in one process:", "",
             "| program | ms per step | gradient evaluations per step |", "|---|---:|---:|"]
    lines += [f"| {name} | {ms:.4f} | {ev:.2f} |" for name, (ms, ev) in steps.items()]
    return lines + [
        "", f"One sweep costs **{sweep / (nuts_same + mala):.2f}×** the sum of the two "
        f"single-group steps with the same kernels (target ≤ 1.2×): the refreshes (one gradient "
        f"evaluation per group and sweep) and the bookkeeping. Against NUTS with its own "
        f"adaptation it costs {sweep / (nuts + mala):.2f}×: estimated while the bias moves, the "
        f"weights group's mass matrix is wider than their conditional spread along the "
        f"direction the bias pulls them, so it takes smaller steps and longer trajectories.", ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    lines = ["## Mask groups (Gibbs)", "",
             "`python scripts/bench_gibbs.py` (part of `make bench`); the machine of the other "
             "sections.", ""]
    lines += overhead_lines(args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        lines += ["(n) Bulk ESS per gradient evaluation on sin_gibbs's posterior:", "",
                  "| run | ess_bulk_min | grad evals (sampling) | ESS per 1000 grad evals | "
                  "mean_z_max | var_ratio_min | var_ratio_max |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for name, overrides in EFFICIENCY.items():
            meta, m = run(overrides, tmp)
            evals = meta["counts"]["grad_evals_sampling"]
            lines.append(f"| {name} | {m['ess_bulk_min']:.0f} | {evals} | "
                         f"{1e3 * m['ess_bulk_min'] / evals:.2f} | {m['mean_z_max']:.3f} | "
                         f"{m['var_ratio_min']:.3f} | {m['var_ratio_max']:.3f} |")
        lines += ["", "(o) The shipped Gibbs experiments (`dependence`: the bias's conditional "
                  "sd given the weights over its marginal sd, exact posterior):", "",
                  "| experiment | bias dependence | mean_z_max | var_ratio_min | var_ratio_max "
                  "| rhat_max | verdict |", "|---|---:|---:|---:|---:|---:|---|"]
        for name in ("sin_gibbs", "sin_gibbs_seed"):
            _, m = run([f"+experiment={name}"], tmp)
            verdict = "ok" if m["verdict"] == "ok" else "WARN: " + m["verdict"]
            lines.append(f"| {name} | {m['groups']['bias']['dependence']:.4f} | "
                         f"{m['mean_z_max']:.3f} | {m['var_ratio_min']:.3f} | "
                         f"{m['var_ratio_max']:.3f} | {m['rhat_max']:.3f} | {verdict} |")
    emit("\n".join(lines), args.output, "gibbs")


if __name__ == "__main__":
    main()
