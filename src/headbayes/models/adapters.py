"""Low-rank (LoRA) adapters on linear layers: `adapters.targets`, `adapters.rank`,
`adapters.alpha`.

Each `equinox.nn.Linear` whose path matches a selector of `adapters.targets` becomes a
`LoRALinear` with the same `weight` and `bias` leaves plus `lora_a` (rank, in) and `lora_b`
(out, rank); its effective weight is W + (alpha / rank) · B A. A starts as
N(0, 1/in) (from PRNGKey(adapters.seed), one key per layer in path order) and B at zero, so an
adapted model computes exactly what the plain one does until B moves. The mask decides what is
sampled: `mask.include=["*.lora_a", "*.lora_b"]` samples both factors (the layer's weight
change is then bilinear in them), `["*.lora_b"]` samples B with A frozen at its random start
(the weight change is linear in B).
Pretraining (`body=pretrained`) never moves the adapter leaves. Built-in MLPs read layers through
`effective_weight`; a user's model must call its linear layers (`layer(x)`) for them to act.
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from headbayes.core.errors import ConfigError
from headbayes.models.mask import leaf_path, node_at, selector_matches

__all__ = ["LoRALinear", "effective_weight", "add_adapters", "is_adapter_leaf",
           "ADAPTER_LEAVES"]

ADAPTER_LEAVES = ("lora_a", "lora_b")


class LoRALinear(eqx.Module):
    weight: jax.Array
    bias: jax.Array | None
    lora_a: jax.Array
    lora_b: jax.Array
    scale: float = eqx.field(static=True)

    def __call__(self, x):
        y = effective_weight(self) @ x
        return y if self.bias is None else y + self.bias


def effective_weight(layer):
    """W, or W + scale · B A for an adapted layer."""
    if isinstance(layer, LoRALinear):
        return layer.weight + layer.scale * (layer.lora_b @ layer.lora_a)
    return layer.weight


def is_adapter_leaf(path: str) -> bool:
    return path.rsplit(".", 1)[-1] in ADAPTER_LEAVES


def _linear_paths(model) -> list[str]:
    """The dotted module paths of every equinox.nn.Linear in `model`."""
    flat, _ = jax.tree_util.tree_flatten_with_path(
        model, is_leaf=lambda node: isinstance(node, eqx.nn.Linear))
    return [leaf_path(path) for path, node in flat if isinstance(node, eqx.nn.Linear)]


def add_adapters(model, adapters):
    """`model` with its target linear layers adapted (the model itself when there are none).
    ConfigError when a selector matches no linear layer (the message lists them)."""

    if not adapters.targets:
        return model
    layers = _linear_paths(model)
    for selector in adapters.targets:
        if not any(selector_matches(selector, p) for p in layers):
            raise ConfigError(f"`adapters.targets` selector '{selector}' matches no linear "
                              f"layer; the model's linear layers: {', '.join(layers) or 'none'}")
    chosen = [p for p in layers if any(selector_matches(s, p) for s in adapters.targets)]
    keys = jax.random.split(jax.random.PRNGKey(adapters.seed), len(chosen))
    for key, path in zip(keys, chosen):
        def where(m, path=path):
            return node_at(m, path)

        old = where(model)
        out, inp = old.weight.shape
        lora_a = jax.random.normal(key, (adapters.rank, inp), old.weight.dtype) / jnp.sqrt(inp)
        lora_b = jnp.zeros((out, adapters.rank), old.weight.dtype)
        new = LoRALinear(old.weight, old.bias, lora_a, lora_b, adapters.alpha / adapters.rank)
        model = eqx.tree_at(where, model, new)
    return model
