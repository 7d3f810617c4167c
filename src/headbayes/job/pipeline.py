"""One run, start to finish: config, data, model, mask, sampler, compiled loop, run directory."""

import contextlib
import os
import platform
import signal
import sys
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import NamedTuple


from headbayes.core import store
from headbayes.core.rundir import RunFiles
from headbayes.config.typed import RunConfig, validate
from headbayes.core.errors import (SIGNALS_RECEIVED, ConfigError, RunDirError, SamplingError,
                              SignalStop)
from headbayes.core.settings import settings
from headbayes.engine.programs import program_key

__all__ = ["run_job", "build_position", "prepare_loop", "Loop", "enable_compile_cache",
           "compile_cache_dir", "FINISHED_BEFORE"]

FINISHED_BEFORE = "finished_before"  # in run_job's answer (not in meta.json): nothing was run


def compile_cache_dir() -> Path | None:
    """$HEADBAYES_COMPILE_CACHE, else $HEADBAYES_OUTPUT_DIR/jax_cache (default outputs/jax_cache);
    the empty string turns the cache off (`core.settings`)."""
    return settings().compile_cache


def enable_compile_cache() -> None:
    """Use JAX's persistent compilation cache, so a program compiled once (any run, any job of a
    sweep with the same structure) loads from disk instead of compiling again."""
    import jax

    directory = compile_cache_dir()
    if directory is None:
        return
    jax.config.update("jax_compilation_cache_dir", str(directory.resolve()))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def build_position(cfg: RunConfig):
    """(params, static, mask): the model's array leaves, its static part, and the bool mask."""
    import equinox as eqx

    from headbayes.models.mask import build_mask
    from headbayes.engine.programs import build_model

    params, static = eqx.partition(build_model(cfg), eqx.is_inexact_array)
    return params, static, build_mask(params, cfg.mask.include, cfg.mask.exclude)


def _versions() -> dict:
    names = ("headbayes", "jax", "jaxlib", "equinox", "blackjax", "hydra-core", "omegaconf",
             "numpy")
    return {"python": platform.python_version(), **{n: metadata.version(n) for n in names}}


class Loop(NamedTuple):
    """What the compiled loop needs: the sampler, its batched start state and its arguments."""

    sampler: object
    state: object
    chain_keys: object
    problem: object
    hyper: object


def prepare_loop(cfg: RunConfig, params, static, mask, data=None,
                 sigma_start: float = 1.0) -> tuple[Loop, float]:
    """Split the parameters by `mask` and set up the sampler over the sampled leaves (and log σ
    when `likelihood.sigma=sampled`, starting at `sigma_start`; `headbayes.posterior.noise`); returns
    the loop and the seconds spent caching frozen-prefix features (0 when none are cached)."""
    import equinox as eqx
    import jax.numpy as jnp
    import numpy as np

    from headbayes.engine import runner
    from headbayes.datasets import make_dataset
    from headbayes.models.prefix import compute_features, first_sampled_stage
    from headbayes.posterior.likelihoods import make_likelihood
    from headbayes.models.mask import named_leaves
    from headbayes.posterior.noise import WithNoise, is_sampled, with_sampled_noise
    from headbayes.posterior.density import Problem, make_logdensity_fn
    from headbayes.samplers import make_sampler, prepared_hyper

    position, frozen = eqx.partition(params, mask)
    data = make_dataset(cfg.data) if data is None else data
    s = cfg.sampler
    x, start_stage, features_s = jnp.asarray(data.x_train), 0, 0.0
    if cfg.model.cache_features and cfg.body.mode != "joint":  # joint training moves the body
        start_stage = first_sampled_stage(eqx.combine(params, static), named_leaves(mask))
    if start_stage > 0:
        started = time.perf_counter()
        x = compute_features(params, static, x, start_stage)
        features_s = time.perf_counter() - started
    likelihood = make_likelihood(cfg.likelihood)
    y = jnp.asarray(data.y_train)
    sampled = [p for p, flag in named_leaves(mask).items() if flag]
    log_prior_fn, prior_center = _prior(cfg, params, sampled)
    head = _stats_head(cfg, params, static, sampled, start_stage, x)
    if head is not None:  # a linear Gaussian head: N-independent statistics stand for the data
        from headbayes.posterior.sufficient import head_stats, make_stats_logdensity_fn

        x, y = head_stats(x, y, eqx.combine(params, static), head), np.zeros((0,), np.float32)
        logdensity_fn = make_stats_logdensity_fn(static, likelihood.from_squares, head,
                                                 log_prior_fn)
    else:
        logdensity_fn = make_logdensity_fn(static, likelihood.log_likelihood, start_stage,
                                           log_prior_fn)
    if is_sampled(cfg.likelihood):
        position = WithNoise(position, jnp.float32(np.log(sigma_start)))
        logdensity_fn = with_sampled_noise(logdensity_fn, cfg.likelihood)
    noise_sd = sigma_start if is_sampled(cfg.likelihood) else likelihood.noise_sd
    noise_sd = 1.0 if noise_sd is None else noise_sd  # families without a noise scale
    problem = Problem(frozen, x, y, jnp.float32(noise_sd), jnp.float32(cfg.prior.sigma),
                      jnp.float32(1.0), prior_center)
    hyper = prepared_hyper(s, cfg, named_leaves(params), sampled, data)
    sampler = make_sampler(s, logdensity_fn, cfg)
    state, chain_keys = runner.init_loop(sampler, position, problem, hyper, seed=cfg.seed,
                                         num_chains=s.num_chains, init_jitter=s.init_jitter,
                                         reuse=program_key(cfg))
    return Loop(sampler, state, chain_keys, problem, hyper), features_s


def _stored_program(cfg: RunConfig, data) -> Path | None:
    """Where the run's chunk program is kept on disk (`headbayes.engine.exported`); None when the
    compilation cache is off or the run traces code from outside headbayes."""
    from headbayes.engine.exported import only_own_code, program_path

    if not only_own_code(cfg):
        return None
    return program_path(compile_cache_dir(), program_key(cfg), data)


def _prior(cfg: RunConfig, params, sampled: list):
    """(log_prior_fn, prior centres) of the run's prior (`headbayes.posterior.priors`); the plain
    Gaussian one keeps the original function and no centres."""
    import jax.numpy as jnp

    from headbayes.models.mask import named_leaves
    from headbayes.posterior.density import plain_log_prior
    from headbayes.posterior.priors import is_plain, leaf_priors, make_log_prior

    named = named_leaves(params)
    leaves = leaf_priors(cfg, {p: leaf.shape for p, leaf in named.items()}, sampled)
    if is_plain(leaves):
        return plain_log_prior, None
    centres = {p: jnp.asarray(named[p]) for p, prior in leaves.items() if prior.centered}
    return make_log_prior(leaves), centres


def _stats_head(cfg: RunConfig, params, static, sampled: list, start_stage: int, features):
    """The path of the linear head whose sufficient statistics replace the data
    (`headbayes.posterior.sufficient`), or None: features cached up to it, only it sampled, a
    `linear_gaussian` likelihood, full batches, and worth it for this width, N and step count."""
    import equinox as eqx

    from headbayes.analysis.exact import not_applicable_reason
    from headbayes.models import linear_head
    from headbayes.posterior.sufficient import worth_it

    s = cfg.sampler
    model = eqx.combine(params, static)
    head = linear_head(model)
    minibatches = any(getattr(o, "batch_size", 0) for o in
                      [s, *(group.sampler for group in cfg.mask.groups.values())])
    if (head is None or start_stage != len(model.stages) - 1 or minibatches
            or not_applicable_reason(cfg, sampled) is not None):
        return None
    total_steps = s.warmup + s.keep * s.thin
    return head if worth_it(features.shape[1], features.shape[0], total_steps) else None


def _info_per_draw(sums, groups: tuple = ()) -> dict:
    """{name: (chain, draw)} step information summed per draw; a Gibbs sampler's per group
    too, as `GROUP.name`."""
    info = {"acceptance_sum": sums.acceptance, "divergences": sums.divergences,
            "grad_evals": sums.grad_evals, "steps": sums.steps, "step_size": sums.step_size}
    for name, group_sums in zip(groups, sums.groups):
        info.update({f"{name}.{k}": v for k, v in _info_per_draw(group_sums).items()})
    return info


def _saved_position(cfg: RunConfig, files: RunFiles):
    """`build_position` with the run's params.npz (the values it sampled with) in place of
    computed values: the model's structure (`models.model_structure`) filled from the file.
    A model with arrays that are not parameters (integer buffers) is built as usual first."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from headbayes.models.mask import build_mask, leaf_path
    from headbayes.models import is_inexact_shape, model_structure

    structure = model_structure(cfg)
    if all(is_inexact_shape(leaf) for leaf in jax.tree.leaves(structure)
           if isinstance(leaf, jax.ShapeDtypeStruct)):
        params, static = eqx.partition(structure, is_inexact_shape)
    else:
        params, static, _ = build_position(cfg)
    saved = files.read_params()

    def value(path, leaf):
        name = leaf_path(path)
        if name not in saved:
            raise RunDirError(f"{files.path(files.PARAMS)} lacks leaf '{name}'")
        if saved[name].shape != leaf.shape or saved[name].dtype != leaf.dtype:
            raise RunDirError(f"{files.path(files.PARAMS)}: leaf '{name}' is "
                              f"{saved[name].dtype}{list(saved[name].shape)}, the model's "
                              f"{leaf.dtype}{list(leaf.shape)}")
        return jnp.asarray(saved[name])  # on the device once, not with every chunk's call

    params = jax.tree_util.tree_map_with_path(value, params)
    return params, static, build_mask(params, cfg.mask.include, cfg.mask.exclude)


@contextlib.contextmanager
def _stop_requests():
    """Record SIGTERM/SIGINT instead of dying mid-chunk; yields a list the signal is put in.
    A second signal exits at once (committed chunks are safe: every write is atomic)."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received  # handlers can only be installed from the main thread
        return
    def handler(signum, _frame):
        if received:  # a second signal: stop now; every committed chunk is already safe
            os._exit(128 + signum)
        received.append(signum)
        SIGNALS_RECEIVED.append(signum)
        print(f"headbayes: signal {signum}: stopping after this chunk (again to stop now)",
              file=sys.stderr)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:  # came after the last chunk's check: still honoured, never swallowed
        raise SignalStop(received[0])


def run_job(cfg: RunConfig, run_dir: Path, progress, resume: bool = False,
            plots_here: bool = True) -> dict:
    """See `_run_job`; the caller holds the run directory's lock (`app.session.owned`).
    `plots_here`: the report's plots will be drawn in this process (else by
    `headbayes.report.plotworker`, or not at all with `report.plots=false`), so matplotlib is
    imported while the chains sample."""
    return _run_job(cfg, Path(run_dir), progress, resume, plots_here and cfg.report.plots)


def _run_job(cfg: RunConfig, run_dir: Path, progress, resume: bool,
             plots_here: bool = True) -> dict:
    """Sample the masked posterior of `cfg` into `run_dir`; return meta.json's content.

    `progress(kind, steps_done, total_steps, draws_done)` is called after each chunk.
    Raises ConfigError before compiling, SamplingError on non-finite values (chunks already
    committed stay on disk). With `resume`, continue from the last committed checkpoint: the
    parameters come from params.npz, the loop state from the checkpoint, and since step t of a
    chain always uses fold_in(chain_key, t) the chain equals an uninterrupted one. A finished
    run is left unchanged.
    """
    from headbayes.core.timing import Stages, earlier_processes, job_seconds

    started, stages = time.perf_counter(), Stages({"startup": job_seconds()})
    validate(cfg)
    _check_memory(cfg)
    import jax
    import numpy as np

    from headbayes.engine import runner
    from headbayes.models.mask import assign_groups, leaf_table, named_leaves

    enable_compile_cache()
    stages.lap("config")
    run_dir = Path(run_dir)
    files = RunFiles(run_dir)
    s = cfg.sampler
    total_steps = s.warmup + s.keep * s.thin
    # killed before its first commit: the run starts again (its chain is the same either way)
    writer = files.chain_writer(resume=True) if resume and files.has(store.MANIFEST) else None
    checkpoint = writer.checkpoint if writer else None
    if checkpoint and checkpoint["next_step"] >= total_steps:  # finished: nothing to do
        return {**files.read_json(files.META), FINISHED_BEFORE: True}
    earlier = earlier_processes(_status(files)) if checkpoint else []
    if resume and files.has(files.DATA):  # the run's own copies of the user's files, checked
        from headbayes.datasets.datacopy import with_copies

        copies = files.read_json(files.DATA).get("files", {})
        cfg = with_copies(files, cfg, copies)
    else:
        from headbayes.datasets.datacopy import copy_inputs

        typed, (cfg, copies) = cfg, copy_inputs(files, cfg)
        files.write_config(typed)  # the paths as typed; the copies are read from now on
    data = _dataset(cfg, copies)  # file errors surface here, before anything compiles
    if getattr(s, "batch_size", 0) > len(data.x_train):  # file data: known only now
        raise ConfigError(f"`sampler.batch_size` must be at most the {len(data.x_train)} "
                          f"training points, got {s.batch_size}")
    if not checkpoint:
        from headbayes.datasets import describe

        files.write_json(files.DATA, {**describe(data), **({"files": copies} if copies else {})})
    stored, stored_key = _stored_program(cfg, data), program_key(cfg)
    if stored is None or not stored.is_file():  # else tracing, and blackjax, may be spared
        _preload_libraries()
    stages.lap("data")
    if checkpoint:  # the saved values on the model's structure: nothing to compute
        params, static, mask = _saved_position(cfg, files)
    else:
        params, static, mask = build_position(cfg)
        if cfg.body.mode != "frozen":  # the report compares the learned body with this one
            files.write_params(named_leaves(params), initial=True)
    stages.lap("model")
    pretraining = {}
    if cfg.body.mode == "pretrained" and not checkpoint:
        from headbayes.datasets import make_dataset
        from headbayes.job.pretrain import pretrain

        start = time.perf_counter()
        task = make_dataset(cfg.body.data) if cfg.body.data else data  # another task, or ours
        params, pretraining = pretrain(cfg, params, static, task)
        pretraining["seconds"] = time.perf_counter() - start
        stages.lap("pretraining")
    shapes = {path: leaf.shape for path, leaf in named_leaves(params).items()}
    sampled = named_leaves(mask)
    table = leaf_table(shapes, sampled, assign_groups(list(shapes), sampled, cfg.mask.groups))
    files.write_json(files.MASK, table)
    cfg, scales = _scales(cfg, files, params, table, data, checkpoint)
    stages.lap("scales")
    loop, features_s = prepare_loop(cfg, params, static, mask, data,
                                    sigma_start=scales.get("likelihood_sigma", 1.0))
    start_step, draws_done = 0, 0
    counts = {"grad_evals_warmup": 0, "grad_evals_sampling": 0, "divergences_warmup": 0}
    if checkpoint:
        leaves = writer.load_state()
        treedef = jax.tree.structure(loop.state)
        if len(leaves) != treedef.num_leaves:
            raise RunDirError(f"checkpoint in {run_dir / 'chain'} does not match the config")
        loop = loop._replace(state=jax.tree.unflatten(treedef, leaves))
        start_step, counts = checkpoint["next_step"], checkpoint["counts"]
        draws_done = sum(part["draws"] for part in writer.parts)
    else:
        writer = files.chain_writer()
        if cfg.body.mode != "joint":  # resumable from here on: params and the state at step 0
            files.write_params(named_leaves(params))
            writer.commit(0, jax.tree.leaves(loop.state), counts)
    stages.lap("prepare")
    slots = runner.choose_slots(s.keep, s.num_chains, table["sampled_size"])
    key = program_key(cfg)
    if key != stored_key:  # a learned scale changed the program
        stored = _stored_program(cfg, data)
    compiled, compile_s = runner.compile_loop(*loop, slots, reuse=key, stored=stored)
    stages.lap("compile")
    sampling_start = time.perf_counter()
    if cfg.body.mode == "joint" and not checkpoint:
        from headbayes.job.joint import train_jointly

        loop, params, joint_compile_s = train_jointly(
            cfg, loop, static, params, mask, slots,
            lambda state: _check_finite(state, cfg, run_dir, 0), counts, progress)
        compile_s += joint_compile_s
    if cfg.body.mode == "joint" and not checkpoint:  # the trained body every draw uses
        files.write_params(named_leaves(params))
        stages.lap("joint training")
    if plots_here:
        threading.Thread(target=_import_plotting, daemon=True, name="report-imports").start()
    with _stop_requests() as stop:
        draws_done = _sample(cfg, loop, compiled, writer, slots, start_step,
                             draws_done, counts, progress, stop, run_dir, stages, earlier)
    sampling_s = time.perf_counter() - sampling_start
    files.write_npz(files.FROZEN_END, {path: np.asarray(leaf) for path, leaf
                                       in named_leaves(loop.problem.frozen).items()})
    stages.lap("writing")
    device, mesh = jax.devices()[0], runner.chain_mesh(s.num_chains)
    meta = {
        "versions": _versions(),
        "seed": cfg.seed,
        "sampler": s.name,
        "num_steps": total_steps,
        "num_draws": draws_done * s.num_chains,
        "counts": counts,
        "pretraining": pretraining,
        "resumed_from_step": start_step if checkpoint else None,
        "device": f"{device.platform}:{device.device_kind}",
        "chain_devices": 1 if mesh is None else mesh.size,
        "chunk_program": getattr(compiled, "source", "traced"),  # or "loaded" (exported.py)
        "timings": {"compile_s": compile_s, "features_s": features_s,
                    "sampling_s": sampling_s, "total_s": time.perf_counter() - started},
    }
    stages.lap("writing")
    meta["timings"].update(stages=stages.seconds, wall_s=job_seconds(),
                           **({"earlier": earlier} if earlier else {}))
    files.write_json(files.META, meta)
    return meta


def _status(files: RunFiles) -> dict:
    """status.json of a run about to resume; {} when corrupt (only its timings are read)."""
    try:
        return files.status()
    except RunDirError:
        return {}


def _preload_libraries() -> None:
    """Start importing blackjax (the sampler, about 0.4 s on a CPU) in a background thread.
    Another package's modules only (no headbayes module: no import cycle across threads); the
    main thread builds the model meanwhile, mostly inside XLA's compile, which releases the
    GIL, and later finds it imported or waits for it. The report's libraries are imported
    once sampling starts (`_import_plotting`), not to slow the tracing of the chunk
    program: the sampling loop runs in XLA, which releases the GIL."""

    def load():
        import blackjax  # noqa: F401

    threading.Thread(target=load, daemon=True, name="preload").start()


def _import_plotting() -> None:
    """matplotlib with its Agg backend (the plots): another package's modules only (imported in
    a thread while the chains sample)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401


def _dataset(cfg: RunConfig, copies: dict):
    """The run's dataset; an error in a copied file names the user's file it came from
    (`copies`: data.json's record of them)."""
    from headbayes.datasets import make_dataset

    try:
        return make_dataset(cfg.data)
    except ConfigError as e:
        message = str(e)
        for key, record in copies.items():
            message = message.replace(getattr(cfg.data, key), str(record.get("source")))
        raise ConfigError(message) from None


def _check_memory(cfg: RunConfig) -> None:
    """`headbayes.config.budget.check_memory` on the model's shapes (traced, nothing allocated)."""
    from headbayes.config.budget import check_memory
    from headbayes.models.mask import select
    from headbayes.models import leaf_shapes

    shapes = leaf_shapes(cfg)
    chosen = select(list(shapes), cfg.mask.include, cfg.mask.exclude)
    check_memory(cfg, shapes, [path for path, sampled in chosen.items() if sampled])


def _scales(cfg: RunConfig, files: RunFiles, params, table: dict, data,
            checkpoint) -> tuple[RunConfig, dict]:
    """(`cfg` with the scales the run samples with, those values): learned ones found now, or
    read back when resuming; written to hyperparameters.json."""
    import numpy as np

    from headbayes.analysis.hyperparameters import checked_values, learn, with_values
    from headbayes.models.mask import named_leaves

    if checkpoint and files.has(files.HYPERPARAMETERS):
        values = checked_values(files.read_json(files.HYPERPARAMETERS),
                                files.path(files.HYPERPARAMETERS))
    else:
        sampled = [leaf["path"] for leaf in table["leaves"] if leaf["sampled"]]
        named = {p: np.asarray(v) for p, v in named_leaves(params).items()}
        values = learn(cfg, named, sampled, data)
        files.write_json(files.HYPERPARAMETERS, values)
    return with_values(cfg, values), values


def _check_finite(state, cfg: RunConfig, run_dir: Path, draws_done: int) -> None:
    """SamplingError naming the first non-finite step, leaf and chain, if there is one."""
    from headbayes.engine import runner
    from headbayes.posterior.noise import named_position
    from headbayes.samplers import failure_hint

    bad = runner.first_nonfinite(state, named_position(state.first_bad_step))
    if bad is not None:
        step, leaf, chain = bad
        raise SamplingError(
            f"sampling failed: non-finite value at step {step} in leaf '{leaf}' "
            f"(chain {chain}); {draws_done} draws kept before it are in {run_dir / 'chain'}. "
            f"{failure_hint(cfg.sampler)}.")


def _sample(cfg, loop, compiled, writer, slots, start_step, draws_done, counts,
            progress, stop, run_dir, stages, earlier) -> int:
    """The chunk loop: check, commit, report progress; stop cleanly after a commit if a
    signal arrived, with this process's timings (and the `earlier` processes') for
    status.json. Returns the number of draws kept per chain. Its time goes to the stages
    `warmup`, `sampling` (the compiled calls and checks) and `writing` (the commits)."""
    import jax

    from headbayes.engine import runner
    from headbayes.core.errors import Interrupted
    from headbayes.posterior.noise import named_position
    from headbayes.core.timing import job_seconds

    s = cfg.sampler
    total_steps = s.warmup + s.keep * s.thin
    for chunk, state, draws, sums in runner.run_loop(
            compiled, loop.state, loop.chain_keys, loop.problem, loop.hyper, warmup=s.warmup,
            keep=s.keep, thin=s.thin, slots=slots, start_step=start_step):
        _check_finite(state, cfg, run_dir, draws_done)
        phase = "warmup" if draws is None else "sampling"
        counts[f"grad_evals_{phase}"] += int(sums.grad_evals.sum())
        if draws is None:
            counts["divergences_warmup"] += int(sums.divergences.sum())
        next_step = chunk.start_step + int(chunk.counts.sum())
        stages.lap(phase)
        writer.commit(next_step, jax.tree.leaves(state), counts,
                      None if draws is None else named_position(draws),
                      None if draws is None else _info_per_draw(sums, loop.sampler.groups))
        stages.lap("writing")
        draws_done += chunk.num_draws
        progress(phase, next_step, total_steps, draws_done)
        if stop:
            timings = {"stages": stages.seconds, "wall_s": job_seconds(), "earlier": earlier}
            raise Interrupted(stop[0], f"stopped by signal {stop[0]} after committing step "
                              f"{next_step}; continue with: headbayes resume {run_dir}",
                              timings)
    return draws_done
