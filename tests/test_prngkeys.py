"""The run's keys computed on the host equal `jax.random`'s."""

import jax
import numpy as np
import pytest

from headbayes.engine import prngkeys


@pytest.mark.parametrize("seed", [0, 1, 7, 123456, 2**31 - 1])
@pytest.mark.parametrize("num_chains", [1, 4, 1000])
def test_run_keys_are_jax_random_split_bit_for_bit(seed, num_chains):
    chain_root, jitter_key = jax.random.split(jax.random.PRNGKey(seed))
    chain_keys, jitter = prngkeys.run_keys(seed, num_chains)
    np.testing.assert_array_equal(chain_keys, np.asarray(jax.random.split(chain_root,
                                                                          num_chains)))
    np.testing.assert_array_equal(jitter, np.asarray(jitter_key))
    assert chain_keys.dtype == np.uint32 and chain_keys.shape == (num_chains, 2)


def test_other_generators_and_seeds_go_to_jax_random(monkeypatch):
    monkeypatch.setattr(prngkeys, "_split", lambda *a: pytest.fail("computed on the host"))
    chain_keys, _ = prngkeys.run_keys(2**31, 2)  # outside [0, 2^31)
    root, _ = jax.random.split(jax.random.PRNGKey(2**31))
    np.testing.assert_array_equal(chain_keys, np.asarray(jax.random.split(root, 2)))
    with jax.threefry_partitionable(False):
        chain_keys, _ = prngkeys.run_keys(3, 4)
        root, _ = jax.random.split(jax.random.PRNGKey(3))
        np.testing.assert_array_equal(chain_keys, np.asarray(jax.random.split(root, 4)))
