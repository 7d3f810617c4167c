"""`cnn`: a small convolutional network for square single-channel images given as flat rows of
side² pixels (`in_features` = side², e.g. 64 for 8×8 digits): two 3×3 convolutions
`convs.0`, `convs.1` (`channels` each, ReLU, each followed by 2×2 average pooling while the
image is at least 2 wide), flattened, a dense layer `hidden` of `width` units (ReLU) and a
linear `output_layer`."""

import math
from dataclasses import dataclass

import equinox as eqx
import jax

from headbayes.core.checks import at_least, require
from headbayes.models.base import MODELS, _check_sizes, model_sizes

__all__ = ["CNN", "CNNOptions"]


@dataclass
class CNNOptions:
    name: str = "cnn"
    in_features: int | None = None  # side² pixels; None: from the data
    out_features: int | None = None
    channels: int = 8
    width: int = 32
    seed: int = 0
    cache_features: bool = True


def _pooled(h):
    """2×2 average pooling of (channels, side, side) while side >= 2."""
    return eqx.nn.AvgPool2d(2, 2)(h) if h.shape[-1] >= 2 else h


def _pooled_side(side: int) -> int:
    return side // 2 if side >= 2 else side


class CNN(eqx.Module):
    convs: list
    hidden: eqx.nn.Linear
    output_layer: eqx.nn.Linear
    side: int = eqx.field(static=True)

    stages = ("convs.0", "convs.1", "hidden", "output_layer")

    def run_stages(self, h, start: int = 0, stop: int | None = None):
        for i in range(start, 4 if stop is None else stop):
            if i == 0:
                h = _pooled(jax.nn.relu(self.convs[0](h.reshape(1, self.side, self.side))))
            elif i == 1:
                h = _pooled(jax.nn.relu(self.convs[1](h))).reshape(-1)
            elif i == 2:
                h = jax.nn.relu(self.hidden(h))
            else:
                h = self.output_layer(h)
        return h

    def __call__(self, x):
        return self.run_stages(x)


def _check(options: CNNOptions, cfg) -> None:
    at_least("model.channels", options.channels, 1)
    at_least("model.width", options.width, 1)
    _check_sizes(options, cfg)
    pixels = model_sizes(cfg)[0]
    require(math.isqrt(pixels) ** 2 == pixels, "model.in_features", pixels,
            "a square number of pixels (side²) for model 'cnn'")


@MODELS.register("cnn", CNNOptions, check=_check)
def make_cnn(options: CNNOptions, key, in_features: int, out_features: int) -> CNN:
    keys = jax.random.split(key, 4)
    c = options.channels
    convs = [eqx.nn.Conv2d(1, c, 3, padding=1, key=keys[0]),
             eqx.nn.Conv2d(c, c, 3, padding=1, key=keys[1])]
    side = math.isqrt(in_features)
    flat = c * _pooled_side(_pooled_side(side)) ** 2
    hidden = eqx.nn.Linear(flat, options.width, key=keys[2])
    output = eqx.nn.Linear(options.width, out_features, key=keys[3])
    return CNN(convs, hidden, output, side)
