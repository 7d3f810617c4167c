"""The MLP: an equinox module for sampling, and the same forward pass in numpy for reports.

Layers are `hidden_layers.{i}` (`depth` of them, width `width`, activation after each) and
`output_layer` (linear). Weights have shape (out, in), as in `equinox.nn.Linear`.
"""

import functools
from typing import Callable


from headbayes.config import ModelConfig

__all__ = ["make_model", "apply_layers", "forward", "features", "layer_names", "leaf_shapes",
           "activation_fn"]


def layer_names(depth: int) -> list[str]:
    """Dotted prefixes of the linear layers in forward order."""
    return [f"hidden_layers.{i}" for i in range(depth)] + ["output_layer"]


def leaf_shapes(cfg: ModelConfig) -> dict:
    """{dotted path: shape} of every parameter leaf, in tree order, without building the model."""
    sizes = [cfg.in_features] + [cfg.width] * cfg.depth + [cfg.out_features]
    shapes = {}
    for i, name in enumerate(layer_names(cfg.depth)):
        shapes[f"{name}.weight"] = (sizes[i + 1], sizes[i])
        shapes[f"{name}.bias"] = (sizes[i + 1],)
    return shapes


def activation_fn(name: str, xp) -> Callable:
    """The activation `name` written with the array module `xp` (numpy or jax.numpy)."""
    return {
        "tanh": xp.tanh,
        "relu": lambda h: xp.maximum(h, 0),
        "sigmoid": lambda h: 1 / (1 + xp.exp(-h)),
        "silu": lambda h: h / (1 + xp.exp(-h)),
    }[name]


def _linear(params: dict, name: str, h):
    weight, bias = params[f"{name}.weight"], params[f"{name}.bias"]
    return h @ weight.swapaxes(-1, -2) + bias[..., None, :]


def apply_layers(params: dict, h, depth: int, activation: Callable, start: int = 0,
                 stop: int | None = None):
    """Layers `start` .. `stop - 1` on `h`, numbered in forward order (hidden layers 0 ..
    depth - 1, the output layer is number `depth`, the default `stop` is depth + 1); the
    activation follows every hidden layer."""
    names = layer_names(depth)
    for i in range(start, depth + 1 if stop is None else stop):
        h = _linear(params, names[i], h)
        if i < depth:
            h = activation(h)
    return h


def features(params: dict, x, depth: int, activation: Callable):
    """The body: hidden layers on a batch `x` of shape (n, in) -> (..., n, width)."""
    return apply_layers(params, x, depth, activation, 0, depth)


def forward(params: dict, x, depth: int, activation: Callable):
    """MLP on a batch `x` of shape (n, in) -> (..., n, out).

    `params` maps dotted leaf paths to arrays; a leaf may carry leading batch axes (chain,
    draw) which broadcast through, so frozen leaves can stay unbatched.
    """
    return apply_layers(params, x, depth, activation)


@functools.cache
def _mlp_class():
    """The equinox module class, defined once (on first use, so numpy-only users skip JAX)."""
    import equinox as eqx
    import jax.numpy as jnp

    class MLP(eqx.Module):
        hidden_layers: list
        output_layer: eqx.nn.Linear
        depth: int = eqx.field(static=True)
        activation: str = eqx.field(static=True)

        def __call__(self, x):
            """Batch `x` of shape (n, in_features) -> (n, out_features)."""
            return self.apply(x)

        def apply(self, h, start: int = 0, stop: int | None = None):
            """Layers `start` .. `stop - 1` (see `apply_layers`) on a batch `h`."""
            params = {f"{name}.{leaf}": getattr(layer, leaf)
                      for name, layer in _named_layers(self) for leaf in ("weight", "bias")}
            return apply_layers(params, h, self.depth, activation_fn(self.activation, jnp),
                                start, stop)

    return MLP


def make_model(cfg: ModelConfig):
    """Build the equinox MLP; `PRNGKey(model.seed)` is split into depth + 1 keys, one per layer.

    The model is immutable, so jobs of a sweep in one process share it (built once per
    architecture and seed)."""
    return _built_model(cfg.in_features, cfg.out_features, cfg.width, cfg.depth, cfg.activation,
                        cfg.seed)


@functools.lru_cache(maxsize=8)
def _built_model(in_features: int, out_features: int, width: int, depth: int, activation: str,
                 seed: int):
    import equinox as eqx
    import jax

    mlp = _mlp_class()

    def build():
        keys = jax.random.split(jax.random.PRNGKey(seed), depth + 1)
        sizes = [in_features] + [width] * depth
        hidden = [eqx.nn.Linear(sizes[i], sizes[i + 1], key=keys[i]) for i in range(depth)]
        output = eqx.nn.Linear(sizes[-1], out_features, key=keys[-1])
        return mlp(hidden, output, depth, activation)

    return eqx.filter_jit(build)()  # one compiled program instead of many eager ops


def _named_layers(model):
    for i, layer in enumerate(model.hidden_layers):
        yield f"hidden_layers.{i}", layer
    yield "output_layer", model.output_layer
