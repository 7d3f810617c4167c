"""One run, start to finish: config -> data -> model -> mask -> sampler -> loop -> store -> report."""

import platform
import time
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

import numpy as np

from headbayes import store
from headbayes.plots import preload_plotting
from headbayes.config import RunConfig, validate
from headbayes.errors import SamplingError

__all__ = ["run_job", "build_position", "prepare_loop", "Loop"]


def build_position(cfg: RunConfig):
    """(params, static, mask): the model's array leaves, its static part, and the bool mask."""
    import equinox as eqx

    from headbayes.mask import build_mask
    from headbayes.model import make_model

    params, static = eqx.partition(make_model(cfg.model), eqx.is_inexact_array)
    return params, static, build_mask(params, cfg.mask.include, cfg.mask.exclude)


def _versions() -> dict:
    names = ("headbayes", "jax", "jaxlib", "equinox", "blackjax", "hydra-core", "omegaconf", "numpy")
    return {"python": platform.python_version(), **{n: metadata.version(n) for n in names}}


class Loop(NamedTuple):
    """What the compiled loop needs: the sampler, its batched start state and its arguments."""

    sampler: object
    state: object
    chain_keys: object
    problem: object
    hyper: object


def prepare_loop(cfg: RunConfig, params, static, mask) -> Loop:
    """Split the parameters by `mask` and set up the sampler over the sampled leaves."""
    import equinox as eqx
    import jax.numpy as jnp

    from headbayes import runner
    from headbayes.data import make_dataset
    from headbayes.posterior import Problem, make_logdensity_fn
    from headbayes.samplers import Hyper, make_sampler

    position, frozen = eqx.partition(params, mask)
    data = make_dataset(cfg.data)
    s = cfg.sampler
    problem = Problem(frozen, jnp.asarray(data.x_train), jnp.asarray(data.y_train),
                      jnp.float32(cfg.likelihood.sigma), jnp.float32(cfg.prior.sigma))
    hyper = Hyper(jnp.float32(s.step_size), jnp.float32(s.temperature))
    sampler = make_sampler(s.name, make_logdensity_fn(static, cfg.likelihood.reduction))
    state, chain_keys = runner.init_loop(sampler, position, cfg.seed, s.num_chains)
    return Loop(sampler, state, chain_keys, problem, hyper)


def run_job(cfg: RunConfig, run_dir: Path, progress) -> dict:
    """Sample the masked posterior of `cfg` into `run_dir`; return meta.json's content.

    `progress(kind, steps_done, total_steps, draws_done)` is called after each chunk.
    Raises ConfigError before compiling, SamplingError on non-finite values (chunks already
    committed stay on disk).
    """
    started = time.perf_counter()
    validate(cfg)
    import jax

    from headbayes import runner
    from headbayes.mask import leaf_table, named_leaves

    run_dir = Path(run_dir)
    params, static, mask = build_position(cfg)
    shapes = {path: leaf.shape for path, leaf in named_leaves(params).items()}
    table = leaf_table(shapes, named_leaves(mask))
    store.write_json(run_dir / "mask.json", table)
    store.write_npz(run_dir / "params.npz", named_leaves(params))
    sampler, state, chain_keys, problem, hyper = prepare_loop(cfg, params, static, mask)
    s = cfg.sampler
    preload_plotting()  # import matplotlib in a thread while XLA compiles
    slots = runner.choose_slots(s.keep, s.num_chains, table["sampled_size"])
    compiled, compile_s = runner.compile_loop(sampler, state, chain_keys, problem, hyper, slots)
    total_steps = s.warmup + s.keep * s.thin
    writer = store.ChainWriter(run_dir)
    sampling_start = time.perf_counter()
    draws_done = 0
    for chunk, state, draws in runner.run_loop(compiled, state, chain_keys, problem, hyper,
                                               warmup=s.warmup, keep=s.keep, thin=s.thin,
                                               slots=slots):
        bad = runner.first_nonfinite(state, named_leaves(state.first_bad_step))
        if bad is not None:
            step, leaf, chain = bad
            raise SamplingError(
                f"sampling failed: non-finite value at step {step} in leaf '{leaf}' "
                f"(chain {chain}); {draws_done} draws kept before it are in {run_dir / 'chain'}. "
                f"Try a smaller sampler.step_size (now {s.step_size:g}).")
        if draws is not None:
            writer.append(named_leaves(draws))
        draws_done += chunk.num_draws
        progress("warmup" if chunk.num_draws == 0 else "sampling",
                 chunk.start_step + int(chunk.counts.sum()), total_steps, draws_done)
    sampling_s = time.perf_counter() - sampling_start
    device = jax.devices()[0]
    meta = {
        "versions": _versions(),
        "seed": cfg.seed,
        "num_steps": total_steps,
        "num_draws": draws_done * s.num_chains,
        "device": f"{device.platform}:{device.device_kind}",
        "timings": {"compile_s": compile_s, "sampling_s": sampling_s,
                    "total_s": time.perf_counter() - started},
    }
    store.write_json(run_dir / "meta.json", meta)
    return meta
