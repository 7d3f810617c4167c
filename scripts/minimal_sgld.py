"""Baseline for `make bench`: the seed experiment written by hand in plain JAX + blackjax.

Same data, model (1-16-16-1 tanh MLP, output layer sampled), likelihood, prior and 2300 SGLD
steps (warmup 1500, keep 400, thin 2) in one `lax.scan`, then the same predictive figures.
No config, no files, no plots. Prints the figures as JSON.
"""

import json

import blackjax
import jax
import jax.numpy as jnp
import numpy as np

SIGMA, PRIOR_SIGMA, STEP, WARMUP, KEEP, THIN = 0.05, 10.0, 1e-3, 1500, 400, 2


def linear(key, fan_in, fan_out):
    wkey, bkey = jax.random.split(key)
    bound = 1 / np.sqrt(fan_in)
    return (jax.random.uniform(wkey, (fan_out, fan_in), minval=-bound, maxval=bound),
            jax.random.uniform(bkey, (fan_out,), minval=-bound, maxval=bound))


def body(hidden, x):
    for w, b in hidden:
        x = jnp.tanh(x @ w.T + b)
    return x


def setup():
    """(head, data, logdensity, hidden) of the seed experiment."""
    rng = np.random.default_rng(0)
    x = np.linspace(-1, 1, 32).astype(np.float32)
    y = (np.sin(np.pi * x) + 0.05 * rng.normal(size=32)).astype(np.float32)[:, None]
    x = x[:, None]
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    hidden = [linear(keys[0], 1, 16), linear(keys[1], 16, 16)]
    head = linear(keys[2], 16, 1)

    def logdensity(head, batch):
        w, b = head
        r = (body(hidden, batch[0]) @ w.T + b - batch[1]) / SIGMA
        return -jnp.mean(r**2) - (jnp.sum(w**2) + jnp.sum(b**2)) / (2 * PRIOR_SIGMA**2)

    return head, (x, y), logdensity, hidden


def make_steps(logdensity, data, num_steps):
    """Jitted `(head, key) -> head` running `num_steps` SGLD steps in one scan (for timing)."""
    sgld = blackjax.sgld(jax.grad(logdensity))

    @jax.jit
    def run(head, key):
        def step(position, t):
            return sgld.step(jax.random.fold_in(key, t), position, data, STEP), None

        return jax.lax.scan(step, head, jnp.arange(num_steps))[0]

    return run


def main():
    head, data, logdensity, hidden = setup()
    sgld = blackjax.sgld(jax.grad(logdensity))

    @jax.jit
    def sample(head, key):
        def step(position, t):
            position = sgld.step(jax.random.fold_in(key, t), position, data, STEP)
            return position, position

        _, trace = jax.lax.scan(step, head, jnp.arange(WARMUP + KEEP * THIN))
        return jax.tree.map(lambda a: a[WARMUP + THIN - 1 :: THIN], trace)

    draws = sample(head, jax.random.PRNGKey(0))
    x_eval = jnp.linspace(-1, 1, 101)[:, None]
    features = body(hidden, x_eval)
    f = jax.vmap(lambda w, b: features @ w.T + b)(*draws)[..., 0]
    mean = f.mean(0)
    lo, hi = jnp.quantile(f, jnp.array([0.05, 0.95]), axis=0)
    truth = jnp.sin(jnp.pi * x_eval[:, 0])
    print(json.dumps({"rel_l2": float(jnp.linalg.norm(mean - truth) / jnp.linalg.norm(truth)),
                      "band_median": float(jnp.median(hi - lo))}))


if __name__ == "__main__":
    main()
