"""The plan of a run: its model split by the mask, the prior, the log density (from the data
or a linear head's sufficient statistics), the sampler and the chains' batched start: all the
compiled loop needs (`Loop`)."""

import time
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from headbayes.analysis.exact import not_applicable_reason
from headbayes.core.errors import RunDirError
from headbayes.core.rundir import RunFiles
from headbayes.core.schema import RunConfig
from headbayes.datasets import make_dataset
from headbayes.engine import runner
from headbayes.engine.programs import build_model, program_key
from headbayes.models.bodies import body_entry
from headbayes.models import is_inexact_shape, linear_head, model_structure, stages_of
from headbayes.models.mask import build_mask, leaf_path, named_leaves
from headbayes.models.prefix import compute_features, first_sampled_stage
from headbayes.posterior.density import Problem, make_logdensity_fn, plain_log_prior
from headbayes.posterior.likelihoods import LIKELIHOODS, make_likelihood
from headbayes.posterior.noise import WithNoise, is_sampled, with_sampled_noise
from headbayes.posterior.physics import is_physics, physics_logdensity_fn, start_position
from headbayes.posterior.priors import is_plain, leaf_priors, make_log_prior
from headbayes.posterior.sufficient import head_stats, make_stats_logdensity_fn, worth_it
from headbayes.samplers import make_sampler, prepared_hyper

__all__ = ["Loop", "build_position", "prepare_loop", "saved_position", "prior_fn", "stats_head"]


def build_position(cfg: RunConfig):
    """(params, static, mask): the model's array leaves, its static part, and the bool mask."""
    params, static = eqx.partition(build_model(cfg), eqx.is_inexact_array)
    return params, static, build_mask(params, cfg.mask.include, cfg.mask.exclude)


class Loop(NamedTuple):
    """What the compiled loop needs: the sampler, its batched start state and its arguments."""

    sampler: object
    state: object
    chain_keys: object
    problem: object
    hyper: object


def prepare_loop(cfg: RunConfig, params, static, mask, data=None,
                 sigma_start: float = 1.0,
                 coefficients_start: dict | None = None) -> tuple[Loop, float]:
    """Split the parameters by `mask` and set up the sampler over the sampled leaves (and log σ
    when `likelihood.sigma=sampled`, starting at `sigma_start`; `headbayes.posterior.noise`;
    and a physics likelihood's unknown coefficients, starting at `coefficients_start` or their
    prior means; `headbayes.posterior.physics`);
    returns the loop and the seconds spent caching frozen-prefix features (0 when none are
    cached)."""
    position, frozen = eqx.partition(params, mask)
    data = make_dataset(cfg.data) if data is None else data
    s = cfg.sampler
    x, start_stage, features_s = jnp.asarray(data.x_train), 0, 0.0
    physics = is_physics(cfg.likelihood)  # derivatives in the inputs: the whole network runs
    if cfg.model.cache_features and "moves" not in body_entry(cfg).caps and not physics:
        start_stage = first_sampled_stage(eqx.combine(params, static), named_leaves(mask))
    if start_stage > 0:
        started = time.perf_counter()
        x = compute_features(params, static, x, start_stage)
        features_s = time.perf_counter() - started
    likelihood = make_likelihood(cfg.likelihood)
    y = jnp.asarray(data.y_train)
    sampled = [p for p, flag in named_leaves(mask).items() if flag]
    log_prior_fn, prior_center = prior_fn(cfg, params, sampled)
    head = stats_head(cfg, params, static, sampled, start_stage, x)  # None for physics
    if physics:
        logdensity_fn = physics_logdensity_fn(static, cfg.likelihood, log_prior_fn)
        position = start_position(position, cfg.likelihood, coefficients_start)
    elif head is not None:  # a linear Gaussian head: N-independent statistics stand for the data
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


def prior_fn(cfg: RunConfig, params, sampled: list):
    """(log_prior_fn, prior centres) of the run's prior (`headbayes.posterior.priors`); the plain
    Gaussian one keeps the original function and no centres."""
    named = named_leaves(params)
    leaves = leaf_priors(cfg, {p: leaf.shape for p, leaf in named.items()}, sampled)
    if is_plain(leaves):
        return plain_log_prior, None
    centres = {p: jnp.asarray(named[p]) for p, prior in leaves.items() if prior.centered}
    return make_log_prior(leaves), centres


def stats_head(cfg: RunConfig, params, static, sampled: list, start_stage: int, features):
    """The path of the linear head whose sufficient statistics replace the data
    (`headbayes.posterior.sufficient`), or None: features cached up to it, only it sampled, a
    `linear_gaussian` likelihood, full batches, and worth it for this width, N and step count."""
    s = cfg.sampler
    model = eqx.combine(params, static)
    head = linear_head(model)
    minibatches = any(getattr(o, "batch_size", 0) for o in
                      [s, *(group.sampler for group in cfg.mask.groups.values())])
    if ("linear_gaussian" not in LIKELIHOODS[cfg.likelihood.name].caps or head is None
            or start_stage != len(stages_of(model)) - 1 or minibatches
            or not_applicable_reason(cfg, sampled) is not None):
        return None
    total_steps = s.warmup + s.keep * s.thin
    return head if worth_it(features.shape[1], features.shape[0], total_steps) else None


def saved_position(cfg: RunConfig, files: RunFiles):
    """`build_position` with the run's params.npz (the values it sampled with) in place of
    computed values: the model's structure (`models.model_structure`) filled from the file.
    A model with arrays that are not parameters (integer buffers) is built as usual first."""
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
