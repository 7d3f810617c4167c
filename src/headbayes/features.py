"""Frozen-prefix features: the layers before the first sampled one, computed once.

Layers are numbered in forward order: hidden layers 0 .. depth - 1, the output layer `depth`.
When every leaf of layers 0 .. k - 1 is frozen (k = the first layer with a sampled leaf), their
output on the data never changes along the chain, so it is computed once and the sampler
applies the model from layer k on. For a head-only mask k = depth (the whole body is cached);
when hidden layer 0 has a sampled leaf, k = 0 and nothing is cached (the full forward runs
every step). Layers after k are applied every step, frozen or not.
"""

from headbayes.model import layer_names

__all__ = ["first_sampled_layer", "compute_features"]


def first_sampled_layer(sampled: dict, depth: int) -> int:
    """The first layer with a sampled leaf; `sampled` maps dotted leaf paths to bools."""
    for i, name in enumerate(layer_names(depth)):
        if any(flag and path.startswith(name + ".") for path, flag in sampled.items()):
            return i
    return depth  # unreachable for a validated mask (at least one sampled leaf)


def compute_features(params, static, x, stop: int):
    """Output of layers 0 .. stop - 1 of the model (`params` recombined with `static`) on `x`,
    in one compiled call; returns a device array."""
    import equinox as eqx
    import jax

    @jax.jit
    def prefix(params, x):
        return eqx.combine(params, static).apply(x, 0, stop)

    return jax.block_until_ready(prefix(params, x))
