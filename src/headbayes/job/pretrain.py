"""Body modes: train the whole network to the MAP before sampling its masked leaves.

`body.mode: pretrained` runs up to `body.steps` optax steps (`body.optimizer`: adam | sgd, at
`body.lr`) on all parameters from the model's initial values. The loss is
- with `body.weight_decay` = w set: the family's mean loss per point + w · Σθ² (Gaussian:
  mean((f(x) − y)²); the others: their mean negative log-likelihood), independent of the
  likelihood's and the prior's scales, so they can be learned afterwards;
- with `body.weight_decay: null`: −(log-likelihood + log-prior) of the run's likelihood and
  prior (their scales must then be numbers).
A physics likelihood (`headbayes.posterior.physics`) trains the deterministic PINN: its loss
is the mean over rows of ½ (residual / sd)² (or the negative log posterior), and its unknown
coefficients are trained with the network, from their prior means; their values go to the
record (`coefficients`), where the sampler starts them, and so do the root mean square
residuals of each term whose sd is sampled (`sigma`).
With a validation part (`data.val_fraction` > 0) the loss on it is computed after every step,
training stops after `body.patience` steps without a better one, and the best parameters are
kept. The trained values go to params.npz; the sampler starts its masked leaves there and the
rest stay frozen at them.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from headbayes.config.typed import RunConfig
from headbayes.engine.runner import FIRST_CALL_STEPS, grow_chunk
from headbayes.models import forward
from headbayes.models.adapters import is_adapter_leaf
from headbayes.models.mask import leaf_path
from headbayes.posterior.density import log_prior
from headbayes.posterior.likelihoods import LIKELIHOODS, make_likelihood
from headbayes.posterior.physics import (coefficient_log_prior, is_physics, physics_loss,
                                         residual_scales, unknown_names)

__all__ = ["pretrain", "optimizer"]


def optimizer(name: str, lr: float):
    """The optax optimizer `body.optimizer` names (adam | sgd); optax is imported here, by the
    runs that train a body."""
    import optax

    return {"adam": optax.adam, "sgd": optax.sgd}[name](lr)


def _physics_loss_fn(cfg: RunConfig, static):
    """loss((params, coefficients), x, y) of a physics likelihood: the PINN's loss, its mean
    over rows plus weight decay, or with `body.weight_decay: null` the negative log posterior
    (the unknown coefficients' priors included)."""
    pinn, decay = physics_loss(cfg.likelihood), cfg.body.weight_decay
    prior_sigma = np.float32(cfg.prior.sigma)

    def loss(trained, x, y):
        params, coefficients = trained
        mean = pinn(eqx.combine(params, static), coefficients, x, y)
        if decay is not None:
            return mean + np.float32(decay) * sum(jnp.sum(leaf**2) for leaf in
                                                  jax.tree_util.tree_leaves(params))
        return (x.shape[0] * mean - log_prior(params, prior_sigma)
                - coefficient_log_prior(coefficients, cfg.likelihood))

    return loss


def _loss_fn(cfg: RunConfig, static):
    """loss(params, x, y) of the module docstring."""
    if is_physics(cfg.likelihood):
        return _physics_loss_fn(cfg, static)
    body = cfg.body
    if body.weight_decay is not None:
        decay = np.float32(body.weight_decay)
        data_loss = LIKELIHOODS[cfg.likelihood.name].extras["loss"]

        def loss(params, x, y):
            prediction = forward(eqx.combine(params, static), x)
            squares = sum(jnp.sum(leaf**2) for leaf in jax.tree_util.tree_leaves(params))
            return data_loss(prediction, y) + decay * squares

        return loss
    likelihood = make_likelihood(cfg.likelihood)
    sigma = np.float32(getattr(cfg.likelihood, "sigma", 1.0))  # unused by families without σ
    prior_sigma = np.float32(cfg.prior.sigma)

    def loss(params, x, y):
        prediction = forward(eqx.combine(params, static), x)
        return -(likelihood.log_likelihood(prediction, y, sigma) + log_prior(params, prior_sigma))

    return loss


def _without_adapters(grads):
    """`grads` with the LoRA adapter leaves' set to zero: pretraining never moves them (Adam
    and SGD then leave them as they are)."""

    return jax.tree_util.tree_map_with_path(
        lambda p, g: jnp.zeros_like(g) if is_adapter_leaf(leaf_path(p)) else g, grads)


def pretrain(cfg: RunConfig, params, static, data) -> tuple[object, dict]:
    """(trained params, {"loss_initial", "loss_final", "steps", and with a validation part
    "val_loss_best", "best_step"}). The steps run in calls sized like the sampling loop's
    (`headbayes.engine.runner.grow_chunk`), so a signal waits about 0.5 s, not for the whole
    training; the result does not depend on how the steps are cut."""
    import time

    import optax

    physics = is_physics(cfg.likelihood)
    if physics:  # the unknown coefficients are trained with the network
        unknown = cfg.likelihood.unknown
        params = (params, {n: jnp.float32(unknown[n]["mean"])
                           for n in unknown_names(cfg.likelihood)})
    opt = optimizer(cfg.body.optimizer, cfg.body.lr)
    loss = _loss_fn(cfg, static)
    steps, patience = cfg.body.steps, cfg.body.patience
    validate = data.x_val is not None

    def val_loss(params, x_val, y_val):  # the same loss on the validation part, or 0
        return loss(params, x_val, y_val) if validate else jnp.float32(0.0)

    @jax.jit
    def start(params, x_val, y_val):
        return (params, opt.init(params), params, val_loss(params, x_val, y_val),
                jnp.int32(0), jnp.int32(0))

    @jax.jit
    def train(carry, until, x, y, x_val, y_val):
        def step(carry):
            params, opt_state, best, best_val, best_step, step = carry
            grads = _without_adapters(jax.grad(loss)(params, x, y))
            updates, opt_state = opt.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            value = val_loss(params, x_val, y_val)
            better = value < best_val if validate else jnp.bool_(True)
            best = jax.tree.map(lambda new, old: jnp.where(better, new, old), params, best)
            best_val = jnp.where(better, value, best_val)
            best_step = jnp.where(better, step + 1, best_step)
            return params, opt_state, best, best_val, best_step, step + 1

        def going(carry):
            *_, best_step, step = carry
            return (step < until) & (step < steps) & (step - best_step < patience)

        return jax.lax.while_loop(going, step, carry)

    empty = jnp.zeros((0,) + data.x_train.shape[1:], jnp.float32)
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    x_val = jnp.asarray(data.x_val) if validate else empty
    y_val = jnp.asarray(data.y_val) if validate else jnp.zeros((0, data.y_train.shape[1]))
    carry, size, done = start(params, x_val, y_val), FIRST_CALL_STEPS, 0
    while True:
        until = min(steps, done + size)
        started = time.perf_counter()
        carry = jax.block_until_ready(train(carry, np.int32(until), x, y, x_val, y_val))
        size = grow_chunk(max(1, int(carry[-1]) - done), time.perf_counter() - started, 0.5)
        done = int(carry[-1])
        if done < until or done >= steps:  # stopped early, or all steps run
            break
    _, _, best, best_val, best_step, _ = carry
    total_loss = jax.jit(loss)
    record = {"loss_initial": float(total_loss(params, x, y)),
              "loss_final": float(total_loss(best, x, y)),
              "steps": done}
    if validate:
        record.update(val_loss_best=float(best_val), best_step=int(best_step))
    if physics:
        best, coefficients = best
        if coefficients:
            record["coefficients"] = {k: float(v) for k, v in coefficients.items()}
        scales = residual_scales(eqx.combine(best, static), coefficients, x, y, cfg.likelihood)
        if scales:
            record["sigma"] = scales
    return best, record
