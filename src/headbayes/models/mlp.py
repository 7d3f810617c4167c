"""`mlp`: `depth` hidden layers `hidden_layers.{i}` of `width` units with `activation`, then a
linear `output_layer` (weights (out, in), as `equinox.nn.Linear`). `PRNGKey(model.seed)` is
split into depth + 1 keys, one per layer, in order (the seed's initial values)."""

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp

from headbayes.core.checks import at_least, choice, require
from headbayes.models.adapters import effective_weight
from headbayes.models.base import MODELS, _check_sizes

__all__ = ["MLP", "MLPOptions", "ACTIVATIONS", "MAX_DEPTH"]

MAX_DEPTH = 1000  # hidden layers; the model is traced layer by layer

ACTIVATIONS = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "silu": jax.nn.silu,
}


@dataclass
class MLPOptions:
    name: str = "mlp"
    in_features: int | None = None  # None: from the data
    out_features: int | None = None
    width: int = 16
    depth: int = 2
    activation: str = "tanh"
    seed: int = 0
    cache_features: bool = True  # frozen stages before the first sampled one computed once


class MLP(eqx.Module):
    hidden_layers: list
    output_layer: eqx.nn.Linear
    activation: str = eqx.field(static=True)

    batched = True  # run_stages works on one example (in,) and on a batch (n, in)

    @property
    def stages(self) -> tuple[str, ...]:
        return (*(f"hidden_layers.{i}" for i in range(len(self.hidden_layers))), "output_layer")

    def run_stages(self, h, start: int = 0, stop: int | None = None):
        layers = [*self.hidden_layers, self.output_layer]
        act = ACTIVATIONS[self.activation]
        for i in range(start, len(layers) if stop is None else stop):
            h = h @ effective_weight(layers[i]).T + layers[i].bias
            if i < len(self.hidden_layers):
                h = act(h)
        return h

    def __call__(self, x):
        """One example (in_features,) -> (out_features,), or a batch (n, in) -> (n, out)."""
        return self.run_stages(x)


def _check(options: MLPOptions, cfg) -> None:
    choice("model.activation", options.activation, tuple(ACTIVATIONS))
    at_least("model.width", options.width, 1)
    require(0 <= options.depth <= MAX_DEPTH, "model.depth", options.depth,
            f"an integer in [0, {MAX_DEPTH}]")
    _check_sizes(options, cfg)


@MODELS.register("mlp", MLPOptions, check=_check)
def make_mlp(options: MLPOptions, key, in_features: int, out_features: int) -> MLP:
    keys = jax.random.split(key, options.depth + 1)
    sizes = [in_features] + [options.width] * options.depth
    hidden = [eqx.nn.Linear(sizes[i], sizes[i + 1], key=keys[i]) for i in range(options.depth)]
    output = eqx.nn.Linear(sizes[-1], out_features, key=keys[-1])
    return MLP(hidden, output, options.activation)
