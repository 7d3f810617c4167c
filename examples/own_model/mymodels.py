"""A small residual network for headbayes (the example of README "Your own model").

headbayes calls `make_net(width=..., blocks=..., key=..., in_features=..., out_features=...)`
with the keys of configs/model/resnet.yaml. The model maps ONE example to its output; the
optional `stages`/`run_stages` let headbayes compute the frozen part once (feature caching)
and give the exact posterior of the linear `readout` as the report's reference.
"""

import equinox as eqx
import jax


class Block(eqx.Module):
    """h + W2 relu(W1 h): a residual block of two linear layers."""

    inner: eqx.nn.Linear
    outer: eqx.nn.Linear

    def __call__(self, h):
        return h + self.outer(jax.nn.relu(self.inner(h)))


class ResNet(eqx.Module):
    embed: eqx.nn.Linear
    blocks: list
    readout: eqx.nn.Linear

    stages = ("embed", "blocks", "readout")  # leaf-path prefixes, in forward order

    def run_stages(self, h, start=0, stop=None):
        """Stages start .. stop - 1 on one example."""
        for i in range(start, 3 if stop is None else stop):
            if i == 0:
                h = jax.nn.relu(self.embed(h))
            elif i == 1:
                for block in self.blocks:
                    h = block(h)
            else:
                h = self.readout(h)
        return h

    def __call__(self, x):
        return self.run_stages(x)


def make_net(width, blocks, *, key, in_features, out_features):
    keys = jax.random.split(key, 2 * blocks + 2)
    return ResNet(
        embed=eqx.nn.Linear(in_features, width, key=keys[0]),
        blocks=[Block(eqx.nn.Linear(width, width, key=keys[2 * i + 1]),
                      eqx.nn.Linear(width, width, key=keys[2 * i + 2]))
                for i in range(blocks)],
        readout=eqx.nn.Linear(width, out_features, key=keys[-1]),
    )
