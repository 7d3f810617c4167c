"""Body modes: train the whole network to the MAP before sampling its masked leaves.

`body.mode: pretrained` runs `body.steps` optax steps (`body.optimizer`: adam | sgd, at
`body.lr`) on −(log-likelihood + log-prior) of *all* parameters, with the run's likelihood and
prior, from the model's initial values; the trained values go to params.npz, the sampler starts
its masked leaves there and the rest stay frozen at them.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from headbayes.config import RunConfig
from headbayes.likelihoods import make_likelihood
from headbayes.models import forward
from headbayes.posterior import log_prior

__all__ = ["pretrain", "OPTIMIZERS"]

OPTIMIZERS = {"adam": optax.adam, "sgd": optax.sgd}


def pretrain(cfg: RunConfig, params, static, data) -> tuple[object, dict]:
    """(trained params, {"loss_initial", "loss_final"}) after `body.steps` optimiser steps."""
    optimizer = OPTIMIZERS[cfg.body.optimizer](cfg.body.lr)
    likelihood = make_likelihood(cfg.likelihood)

    def loss(params, x, y, sigma, prior_sigma):
        prediction = forward(eqx.combine(params, static), x)
        return -(likelihood.log_likelihood(prediction, y, sigma) + log_prior(params, prior_sigma))

    @jax.jit
    def train(params, x, y, sigma, prior_sigma):
        def step(carry, _):
            params, opt_state = carry
            value, grads = jax.value_and_grad(loss)(params, x, y, sigma, prior_sigma)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), value

        (params, _), values = jax.lax.scan(step, (params, optimizer.init(params)), None,
                                           length=cfg.body.steps)
        return params, values[0], loss(params, x, y, sigma, prior_sigma)

    trained, first, last = train(params, jnp.asarray(data.x_train), jnp.asarray(data.y_train),
                                 np.float32(likelihood.noise_sd), np.float32(cfg.prior.sigma))
    return trained, {"loss_initial": float(first), "loss_final": float(last)}
