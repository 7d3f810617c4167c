"""Frozen-prefix features: the stages before the first sampled one, computed once.

When every leaf of stages 0 .. k − 1 is frozen (k = the first stage with a sampled leaf), their
output on the data never changes along the chain, so it is computed once and the sampler runs
the model from stage k on. For a head-only mask of the MLP k = depth (the whole body is
cached); when the first stage has a sampled leaf, or the model has no stages (see
`headbayes.models`), k = 0 and the full forward runs every step.
"""

from headbayes.models.base import features, first_sampled_stage

__all__ = ["first_sampled_stage", "compute_features"]


def compute_features(params, static, x, stop: int):
    """Output of stages 0 .. stop − 1 of the model (`params` recombined with `static`) on
    `x`, in one compiled call; returns a device array."""
    import equinox as eqx
    import jax

    @jax.jit
    def prefix(params, x):
        return features(eqx.combine(params, static), x, stop)

    return jax.block_until_ready(prefix(params, x))
