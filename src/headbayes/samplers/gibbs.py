"""Metropolis-within-Gibbs over the disjoint groups of `mask.groups`, each with its own sampler.

One step of `sampler=gibbs` is one sweep: every group in config order takes one step of its
own sampler on its conditional posterior p(θ_g | the other groups' current values): the other
groups enter the log-density like frozen leaves (`Problem.frozen`), and the prior is that of
θ_g alone (the Gaussian prior factorises over leaves). A sampler that caches the log-density
and its gradient at its position (HMC, NUTS, MALA) recomputes them first (`Sampler.refresh`,
one gradient evaluation, counted in the group's `num_grad_evals`), since the other groups
moved the target under it; without that its accept/reject would use a stale value and the
chain would leave the posterior.

Warmup, keep and thin count sweeps; each group adapts (HMC/NUTS) or fits (VI, Laplace) during
the `sampler.warmup` sweeps, on the conditionals it meets then. The keys every sampler has
(`SHARED_KEYS`) are the run's `sampler` keys; a group's `sampler` block sets the rest.

A group with a fitted sampler (`vi`, `laplace`) makes the run mixed VI + MCMC. Its Gaussian
is refit to the current conditional p(θ_v | θ_m) at every sweep (warm-started from the last
fit: Laplace takes line-searched Newton steps until none improves (at most NEWTON_STEPS) and the
Hessian there, VI takes REFIT_STEPS
optimiser steps), and θ_v is drawn from it. So the run is Gibbs with one conditional replaced
by its Gaussian approximation q(θ_v | θ_m): exact where that conditional is Gaussian and the
fit reaches it (Laplace on a linear-Gaussian block, as the seed's head bias), approximate
otherwise, by as much as q(· | θ_m) differs from p(· | θ_m). (A factor fitted once and held
would not do: one MCMC step per sweep from a θ_m drawn under another θ_v does not leave
q(θ_v) p(θ_m | θ_v) invariant.) During warmup the fit takes one step per sweep.
"""

from dataclasses import dataclass
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from headbayes.core.checks import require
from headbayes.core.errors import ConfigError
from headbayes.models.base import leaf_shapes
from headbayes.models.bodies import body_entry, modes_without
from headbayes.models.mask import group_owners, leaf_path
from headbayes.posterior.noise import is_sampled
from headbayes.samplers.base import (SAMPLERS, Info, Sampler, SamplerOptions, check_common,
                                     make_sampler, prepared_hyper)

__all__ = ["GibbsOptions", "GibbsState", "make_gibbs", "group_paths", "pick"]


@dataclass
class GibbsOptions(SamplerOptions):
    name: str = "gibbs"
    warmup: int = 500
    keep: int = 1000
    thin: int = 1
    num_chains: int = 4
    init_jitter: float = 0.1


class GibbsState(NamedTuple):
    position: object  # every sampled leaf (None elsewhere)
    groups: tuple  # each group's own sampler state, in group order


def pick(tree, paths) -> object:
    """`tree` with the leaves outside `paths` (dotted names) replaced by None."""
    return jax.tree_util.tree_map_with_path(
        lambda path, x: x if leaf_path(path) in paths else None, tree)


def group_paths(cfg) -> dict:
    """{group name: set of its sampled leaf paths}, in config order (checked: disjoint, each
    sampled leaf in one group)."""

    owner = group_owners(cfg.mask, list(leaf_shapes(cfg)))
    return {name: {p for p, g in owner.items() if g == name} for name in cfg.mask.groups}


def _check(options, cfg) -> None:
    check_common(options, cfg)
    if not cfg.mask.groups:
        raise ConfigError("sampler=gibbs needs mask.groups: a name per group with its "
                          "selectors and its sampler (see docs/patterns.md)")

    require("moves" not in body_entry(cfg).caps, "body.mode", cfg.body.mode,
            f"{' or '.join(modes_without('moves'))} with sampler=gibbs")
    if is_sampled(cfg.likelihood):
        raise ConfigError("likelihood.sigma=sampled is not available with sampler=gibbs yet; "
                          "set a number, `evidence` or `validation`")
    for name, group in cfg.mask.groups.items():
        entry = SAMPLERS[group.sampler.name]
        if entry.caps & {"composite", "closed_form"}:  # both need the whole posterior
            raise ConfigError(f"`mask.groups.{name}.sampler.name` must be a single sampler "
                              f"other than gibbs and exact, got '{group.sampler.name}'")
        try:
            entry.check(group.sampler, cfg)
        except ConfigError as e:
            raise ConfigError(f"in mask.groups.{name}: {e}") from None


def _prepare(cfg, params: dict, sampled: list, data) -> dict:
    groups = group_paths(cfg)
    return {"groups": {name: prepared_hyper(group.sampler, cfg, params, sorted(groups[name]),
                                            data)
                       for name, group in cfg.mask.groups.items()}}


@SAMPLERS.register("gibbs", GibbsOptions, check=_check, caps={"composite"},
                   hyper=("temperature",), prepare=_prepare,
                   hint=lambda options: "Check each group's sampler settings (mask.groups)")
def make_gibbs(logdensity_fn: Callable, options, cfg) -> Sampler:
    """The Gibbs sampler over `cfg.mask.groups`, each group's sampler built on
    `logdensity_fn(position, problem)` restricted to its leaves."""
    import equinox as eqx

    paths = group_paths(cfg)
    names = tuple(cfg.mask.groups)
    samplers = tuple(make_sampler(cfg.mask.groups[n].sampler, logdensity_fn) for n in names)

    def conditional(position, problem, name):
        """(θ_g, the problem with every other group's current values frozen)."""
        others = pick(position, set().union(*(paths[n] for n in names if n != name)))
        return pick(position, paths[name]), problem._replace(
            frozen=eqx.combine(others, problem.frozen))

    def init(position, problem, hyper):
        states = []
        for name, sampler in zip(names, samplers):
            own, given = conditional(position, problem, name)
            states.append(sampler.init(own, given, hyper["groups"][name]))
        return GibbsState(position, tuple(states))

    def step(key, state: GibbsState, problem, hyper):
        position, states, infos = state.position, [], []
        for key, name, sampler, own_state in zip(jax.random.split(key, len(names)), names,
                                                 samplers, state.groups):
            _, given = conditional(position, problem, name)
            group_hyper = hyper["groups"][name]
            refreshed, (refresh_key, key) = 0, jax.random.split(key)
            if sampler.refresh is not None:
                own_state, refreshed = sampler.refresh(refresh_key, own_state, given,
                                                       group_hyper)
            own_state, info = sampler.step(key, own_state, given, group_hyper)
            states.append(own_state)
            infos.append(info._replace(num_grad_evals=info.num_grad_evals + refreshed))
            position = eqx.combine(own_state.position, position)
        total = Info(jnp.mean(jnp.stack([i.acceptance_rate for i in infos])),
                     jnp.any(jnp.stack([i.is_divergent for i in infos])),
                     sum(i.num_grad_evals for i in infos), jnp.float32(0), tuple(infos))
        return GibbsState(position, tuple(states)), total

    return Sampler(init, step, groups=names)
