"""The run's chain keys computed on the host: `split(split(PRNGKey(seed))[0], n)` and
`split(PRNGKey(seed))[1]`, bit for bit what `jax.random` gives, without compiling the four
small programs those eager calls would (about 0.15 s of a cold start on a CPU).

Only JAX's default generator is computed here (threefry2x32, partitionable splits, as in JAX ≥
0.5); any other setting goes to `jax.random` itself.
"""

import numpy as np

__all__ = ["run_keys"]

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _rotl(x: np.ndarray, d: int) -> np.ndarray:
    return (x << np.uint32(d)) | (x >> np.uint32(32 - d))


def threefry2x32(key: np.ndarray, x0: np.ndarray, x1: np.ndarray) -> tuple:
    """The Threefry-2x32 hash (20 rounds) of the counter pairs (x0, x1) under `key` (2 uint32)."""
    k0, k1 = np.uint32(key[0]), np.uint32(key[1])
    ks = (k0, k1, k0 ^ k1 ^ np.uint32(0x1BD11BDA))
    x = [x0 + ks[0], x1 + ks[1]]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x[0] = x[0] + x[1]
            x[1] = _rotl(x[1], r) ^ x[0]
        x[0] = x[0] + ks[(i + 1) % 3]
        x[1] = x[1] + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x[0], x[1]


def _split(key: np.ndarray, num: int) -> np.ndarray:
    """`jax.random.split(key, num)` (partitionable threefry): (num, 2) uint32."""
    high, low = np.zeros(num, np.uint32), np.arange(num, dtype=np.uint32)
    return np.stack(threefry2x32(key, high, low), axis=1)


def _host_computable() -> bool:
    import jax

    return (jax.config.jax_default_prng_impl == "threefry2x32"
            and jax.config.jax_threefry_partitionable)


def run_keys(seed: int, num_chains: int) -> tuple[np.ndarray, np.ndarray]:
    """(chain keys (num_chains, 2), jitter key (2,)), uint32, from `PRNGKey(seed)`; seeds
    outside [0, 2³¹) go to `jax.random` (its conversion of those depends on its settings)."""
    if not (0 <= int(seed) < 2**31 and _host_computable()):
        import jax

        chain_root, jitter_key = jax.random.split(jax.random.PRNGKey(seed))
        return np.asarray(jax.random.split(chain_root, num_chains)), np.asarray(jitter_key)
    with np.errstate(over="ignore"):  # threefry's additions wrap around, as meant
        chain_root, jitter_key = _split(np.array([0, seed], np.uint32), 2)
        return _split(chain_root, num_chains), jitter_key
