"""One run, start to finish, in stages (each a lap of meta.json's timings): config, data,
model (and pretraining), mask and scales, the loop's start, compile, joint training, sampling
chunk by chunk into the run directory. The caller holds the directory's lock and writes
meta.json (`app.session`)."""

import importlib
import platform
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Callable, NamedTuple

import jax
import numpy as np

from headbayes.analysis.hyperparameters import checked_values, learn, with_values
from headbayes.config.budget import check_report_memory, check_run_memory
from headbayes.config.saved import user_functions
from headbayes.config.typed import RunConfig
from headbayes.core import store
from headbayes.core.errors import ConfigError, Interrupted, RunDirError, SamplingError
from headbayes.core.rundir import RunFiles
from headbayes.core.timing import Stages, earlier_processes, job_seconds
from headbayes.datasets import describe, make_dataset
from headbayes.datasets.datacopy import copy_inputs, with_copies
from headbayes.engine import runner
from headbayes.engine.exported import only_own_code, program_path
from headbayes.engine.programs import compile_cache_dir, enable_compile_cache, program_key
from headbayes.job.bodies import before_sampling, during_sampling
from headbayes.models.bodies import body_entry
from headbayes.job.plan import build_position, prepare_loop, saved_position
from headbayes.job.signals import stop_requests
from headbayes.models import TargetModel
from headbayes.models.code import source_record
from headbayes.models.mask import assign_groups, leaf_table, named_leaves
from headbayes.posterior.position import named_position
from headbayes.samplers import failure_hint

__all__ = ["run_job", "JobResult"]


class JobResult(NamedTuple):
    """What a job leaves its caller: meta.json's content (the caller writes it), the dataset it
    sampled on (the report reuses it), and whether the run had finished before (nothing ran;
    meta is the saved one, data None)."""
    meta: dict
    data: object = None
    finished_before: bool = False


def _versions() -> dict:
    names = ("headbayes", "jax", "jaxlib", "equinox", "blackjax", "hydra-core", "omegaconf",
             "numpy")
    return {"python": platform.python_version(), **{n: metadata.version(n) for n in names}}


def _stored_program(cfg: RunConfig, key: str, data) -> Path | None:
    """Where the run's chunk program (its `program_key`) is kept on disk
    (`headbayes.engine.exported`); None when the compilation cache is off or the run traces code
    from outside headbayes."""
    if not only_own_code(cfg):
        return None
    return program_path(compile_cache_dir(), key, data)


def _info_per_draw(sums, groups: tuple = ()) -> dict:
    """{name: (chain, draw)} step information summed per draw; a Gibbs sampler's per group
    too, as `GROUP.name`."""
    info = {"acceptance_sum": sums.acceptance, "divergences": sums.divergences,
            "grad_evals": sums.grad_evals, "steps": sums.steps, "step_size": sums.step_size}
    for name, group_sums in zip(groups, sums.groups):
        info.update({f"{name}.{k}": v for k, v in _info_per_draw(group_sums).items()})
    return info


def run_job(cfg: RunConfig, run_dir: Path, progress, resume: bool = False,
            on_sampling: Callable[[], None] | None = None) -> JobResult:
    """Sample the masked posterior of `cfg` (typed and validated: `headbayes.compose`,
    `config.typed.validate`) into `run_dir`; return meta.json's content (not written here) and
    the dataset. The caller holds the run directory's lock (`app.session.owned`).

    `progress(kind, steps_done, total_steps, draws_done)` is called after each chunk.
    Raises ConfigError before compiling, SamplingError on non-finite values (chunks already
    committed stay on disk). With `resume`, continue from the last committed checkpoint: the
    parameters come from params.npz, the loop state from the checkpoint, and since step t of a
    chain always uses fold_in(chain_key, t) the chain equals an uninterrupted one. A finished
    run is left unchanged. Each stage's seconds are a lap of `stages` (meta.json).
    `on_sampling()` is called once the chains start sampling (the session starts the report's
    imports there: the sampling loop runs in XLA, which releases the GIL).
    """
    started, stages = time.perf_counter(), Stages({"startup": job_seconds()})
    check_run_memory(cfg)
    enable_compile_cache()
    stages.lap("config")
    files = RunFiles(Path(run_dir))
    # killed before its first commit: the run starts again (its chain is the same either way)
    writer = files.chain_writer(resume=True) if resume and files.has(store.MANIFEST) else None
    checkpoint = writer.checkpoint if writer else None
    if writer:
        store.check_progress(files.root, {"parts": writer.parts, "checkpoint": checkpoint},
                             cfg.sampler)
    if (checkpoint and checkpoint["next_step"] >= _total_steps(cfg)  # finished: nothing to do
            and files.has(files.META)):  # (stopped before meta.json: its end is done again)
        return JobResult(files.read_json(files.META), finished_before=True)
    earlier = earlier_processes(_status(files)) if checkpoint else []
    cfg, data = _data(cfg, files, resume, checkpoint)
    key = program_key(cfg)
    stored = _stored_program(cfg, key, data)
    # tracing needs blackjax; loading a stored program, JAX's CPU LAPACK handlers (scipy.linalg)
    _preload_libraries(("blackjax",) if stored is None or not stored.is_file()
                       else ("scipy.linalg",))
    stages.lap("data")
    params, static, mask, pretraining = _model(cfg, files, data, checkpoint, stages)
    cfg, table, scales = _mask_and_scales(cfg, files, params, mask, data, checkpoint)
    check_report_memory(cfg, data, [leaf["path"] for leaf in table["leaves"] if leaf["sampled"]])
    stages.lap("scales")
    loop, features_s = prepare_loop(cfg, params, static, mask, data,
                                    sigma_start=scales.get("likelihood_sigma", 1.0),
                                    coefficients_start={**pretraining.get("coefficients", {}),
                                                        **pretraining.get("sigma", {})})
    loop, writer, start_step, counts, draws_done = _start(cfg, files, loop, params, writer,
                                                          checkpoint)
    stages.lap("prepare")
    slots = runner.choose_slots(cfg.sampler.keep, cfg.sampler.num_chains, table["sampled_size"])
    if program_key(cfg) != key:  # a learned scale changed the program
        key = program_key(cfg)
        stored = _stored_program(cfg, key, data)
    compiled, compile_s = runner.compile_loop(*loop, slots, reuse=key, stored=stored)
    stages.lap("compile")
    sampling_start = time.perf_counter()
    during = during_sampling(cfg)
    if during is not None and not checkpoint:
        loop, params, body_compile_s = during(
            cfg, loop, static, params, mask, slots,
            lambda state: _check_finite(state, cfg, files.root, 0), counts, progress)
        compile_s += body_compile_s
        files.write_params(named_leaves(params))  # the trained body every draw uses
        stages.lap(f"{cfg.body.mode} training")
    if on_sampling is not None:
        on_sampling()
    with stop_requests() as stop:
        draws_done = _sample(cfg, loop, compiled, writer, slots, start_step,
                             draws_done, counts, progress, stop, files.root, stages, earlier)
    sampling_s = time.perf_counter() - sampling_start
    files.write_npz(files.FROZEN_END, {path: np.asarray(leaf) for path, leaf
                                       in named_leaves(loop.problem.frozen).items()})
    stages.lap("writing")
    device, mesh = jax.devices()[0], runner.chain_mesh(cfg.sampler.num_chains)
    meta = {
        "versions": _versions(),
        "seed": cfg.seed,
        "sampler": cfg.sampler.name,
        "num_steps": _total_steps(cfg),
        "num_draws": draws_done * cfg.sampler.num_chains,
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
    return JobResult(meta, data)


def _total_steps(cfg: RunConfig) -> int:
    return cfg.sampler.warmup + cfg.sampler.keep * cfg.sampler.thin


def _data(cfg: RunConfig, files: RunFiles, resume: bool, checkpoint) -> tuple:
    """(`cfg` reading the run's own checked copies of the user's files, the dataset); a new run
    copies them and writes run_config.json (the paths as typed) and data.json."""
    if resume and files.has(files.DATA):
        copies = files.read_json(files.DATA).get("files", {})
        cfg = with_copies(files, cfg, copies)
    else:
        typed, (cfg, copies) = cfg, copy_inputs(files, cfg)
        files.write_config(typed)  # the paths as typed; the copies are read from now on
        functions = {key: source_record(name) for key, name in user_functions(cfg)}
        if isinstance(cfg.model, TargetModel) or functions:  # what a later report may import
            record = (source_record(cfg.model._target_)  # without --code
                      if isinstance(cfg.model, TargetModel) else {})
            files.write_json(files.MODEL_SOURCE,
                             {**record, **({"functions": functions} if functions else {})})
    data = _dataset(cfg, copies)  # file errors surface here, before anything compiles
    if getattr(cfg.sampler, "batch_size", 0) > len(data.x_train):  # file data: known only now
        raise ConfigError(f"`sampler.batch_size` must be at most the {len(data.x_train)} "
                          f"training points, got {cfg.sampler.batch_size}")
    if not checkpoint:
        files.write_json(files.DATA, {**describe(data), **({"files": copies} if copies else {})})
        if data.rows is not None:  # which of the file's rows each part holds
            files.write_npz(files.SPLIT, data.rows)
    return cfg, data


def _model(cfg: RunConfig, files: RunFiles, data, checkpoint, stages: Stages) -> tuple:
    """(params, static, mask, pretraining record): the saved values when resuming, else the
    built model, trained first with body=pretrained (params_initial.npz keeps the values
    before any training)."""
    if checkpoint:  # the saved values on the model's structure: nothing to compute
        params, static, mask = saved_position(cfg, files)
    else:
        params, static, mask = build_position(cfg)
        _check_start(params, ConfigError, "the model's factory gave", "check its initial values")
        if "learned" in body_entry(cfg).caps:  # the report compares the body with this one
            files.write_params(named_leaves(params), initial=True)
    stages.lap("model")
    pretraining = {}
    before = before_sampling(cfg)
    if before is not None and not checkpoint:
        params, pretraining = before(cfg, params, static, data)
        _check_start(params, SamplingError, "training the body left",
                     f"lower body.lr (now {cfg.body.lr})")
        stages.lap("pretraining")
    return params, static, mask, pretraining


def _check_start(params, error: type, source: str, advice: str) -> None:
    """`error` naming the first leaf of `params` that holds NaN or infinite values: sampling
    from there would fail at its first step, with advice about the sampler's step size."""
    for path, value in named_leaves(params).items():
        if not np.isfinite(np.asarray(value)).all():
            raise error(f"{source} non-finite values in leaf '{path}', where sampling would "
                        f"start; {advice}")


def _mask_and_scales(cfg: RunConfig, files: RunFiles, params, mask, data, checkpoint) -> tuple:
    """(`cfg` with the scales it samples with, mask.json's table, those scales)."""
    shapes = {path: leaf.shape for path, leaf in named_leaves(params).items()}
    sampled = named_leaves(mask)
    table = leaf_table(shapes, sampled, assign_groups(list(shapes), sampled, cfg.mask.groups))
    files.write_json(files.MASK, table)
    cfg, scales = _scales(cfg, files, params, table, data, checkpoint)
    return cfg, table, scales


def _start(cfg: RunConfig, files: RunFiles, loop, params, writer, checkpoint) -> tuple:
    """(loop, chain writer, start step, counts, draws kept): the checkpoint's state when
    resuming; else a new chain, resumable from here on (params.npz and the state at step 0)
    unless joint training is still to move the body."""
    counts = {"grad_evals_warmup": 0, "grad_evals_sampling": 0, "divergences_warmup": 0}
    if not checkpoint:
        writer = files.chain_writer()
        if "moves" not in body_entry(cfg).caps:
            files.write_params(named_leaves(params))
            writer.commit(0, jax.tree.leaves(loop.state), counts)
        return loop, writer, 0, counts, 0
    leaves = writer.load_state()
    expected, treedef = jax.tree.flatten(loop.state)
    if len(leaves) != treedef.num_leaves or any(
            (np.shape(a), a.dtype) != (np.shape(b), np.dtype(b.dtype))
            for a, b in zip(leaves, expected)):
        raise RunDirError(f"checkpoint in {files.root / 'chain'} does not match the config "
                          f"(its arrays' number, shapes or dtypes differ from the loop state's)")
    loop = loop._replace(state=jax.tree.unflatten(treedef, leaves))
    draws_done = sum(part["draws"] for part in writer.parts)
    return loop, writer, checkpoint["next_step"], checkpoint["counts"], draws_done


def _status(files: RunFiles) -> dict:
    """status.json of a run about to resume; {} when corrupt (only its timings are read)."""
    try:
        return files.status()
    except RunDirError:
        return {}


def _preload_libraries(names: tuple[str, ...]) -> None:
    """Start importing other packages' modules (blackjax: about 0.4 s on a CPU; scipy.linalg:
    0.12 s) in a background thread: no headbayes module, so no import cycle across threads.
    The main thread builds the model meanwhile, mostly inside XLA's compile, which releases
    the GIL, and later finds them imported or waits for them."""
    def load():
        for name in names:
            importlib.import_module(name)

    threading.Thread(target=load, daemon=True, name="preload").start()


def _dataset(cfg: RunConfig, copies: dict):
    """The run's dataset; an error in a copied file names the user's file it came from
    (`copies`: data.json's record of them)."""
    try:
        return make_dataset(cfg.data)
    except ConfigError as e:
        message = str(e)
        for key, record in copies.items():
            message = message.replace(getattr(cfg.data, key), str(record.get("source")))
        raise ConfigError(message) from None


def _scales(cfg: RunConfig, files: RunFiles, params, table: dict, data,
            checkpoint) -> tuple[RunConfig, dict]:
    """(`cfg` with the scales the run samples with, those values): learned ones found now, or
    read back when resuming; written to hyperparameters.json."""
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
    bad = runner.first_nonfinite(state, named_position(state.first_bad_step))
    if bad is not None:
        step, leaf, chain = bad
        first = (" At the first step the model's outputs or their gradients may be what is "
                 "not finite: check its forward on the training inputs." if step == 0 else "")
        raise SamplingError(
            f"sampling failed: non-finite value at step {step} in leaf '{leaf}' "
            f"(chain {chain}); {draws_done} draws kept before it are in {run_dir / 'chain'}. "
            f"{failure_hint(cfg.sampler)}.{first}")


def _sample(cfg, loop, compiled, writer, slots, start_step, draws_done, counts,
            progress, stop, run_dir, stages, earlier) -> int:
    """The chunk loop: check, commit, report progress; stop cleanly after a commit if a
    signal arrived, with this process's timings (and the `earlier` processes') for
    status.json. Returns the number of draws kept per chain. Its time goes to the stages
    `warmup`, `sampling` (the compiled calls and checks) and `writing` (the commits)."""
    s = cfg.sampler
    total_steps = s.warmup + s.keep * s.thin
    committed = start_step
    for chunk, state, draws, sums in runner.run_loop(
            compiled, loop.state, loop.chain_keys, loop.problem, loop.hyper, warmup=s.warmup,
            keep=s.keep, thin=s.thin, slots=slots, start_step=start_step,
            stopping=lambda: bool(stop)):
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
        draws_done, committed = draws_done + chunk.num_draws, next_step
        progress(phase, next_step, total_steps, draws_done)
        if stop:
            break
    if stop:  # after a commit, or between the pieces of a draw longer than a call
        timings = {"stages": stages.seconds, "wall_s": job_seconds(), "earlier": earlier}
        raise Interrupted(stop[0], f"stopped by signal {stop[0]} after committing step "
                          f"{committed}; continue with: headbayes resume {run_dir}", timings)
    return draws_done
