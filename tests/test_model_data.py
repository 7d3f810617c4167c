import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest

from headbayes.config import DataConfig, ModelConfig
from headbayes.data import eval_grid, make_dataset
from headbayes.mask import named_leaves
from headbayes.model import activation_fn, forward, leaf_shapes, make_model


def printed(values) -> list[str]:
    """float32 values as numpy prints them (shortest round-trip repr, at most 8 significant
    digits)."""
    return [np.format_float_positional(v, precision=8, fractional=False, trim="-")
            for v in np.asarray(values, np.float32).ravel()]


def test_seed_initial_values_exactly():
    params = named_leaves(eqx.filter(make_model(ModelConfig()), eqx.is_inexact_array))
    assert printed(params["output_layer.bias"]) == ["0.1228435"]
    assert printed(params["output_layer.weight"][0, :3]) == ["-0.2155745", "-0.15261674",
                                                             "-0.12505025"]
    assert printed(params["hidden_layers.0.weight"][:3, 0]) == ["-0.43456006", "0.5761945",
                                                                "-0.20483303"]
    assert sum(p.size for p in params.values()) == 321


def test_seed_data():
    data = make_dataset(DataConfig())
    x = np.linspace(-1, 1, 32).astype(np.float32)
    noise = np.random.default_rng(0).normal(size=32)
    np.testing.assert_array_equal(data.x_train[:, 0], x)
    np.testing.assert_array_equal(data.y_train[:, 0],
                                  (np.sin(np.pi * x) + 0.05 * noise).astype(np.float32))
    assert data.x_train.dtype == data.y_train.dtype == np.float32


def test_eval_grid_is_inclusive():
    grid = eval_grid(DataConfig())
    assert grid.shape == (101,)
    assert grid[0] == -1.0 and abs(grid[-1] - 1.0) < 1e-6
    np.testing.assert_allclose(np.diff(grid), 0.02, atol=1e-6)


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "silu"])
def test_numpy_forward_matches_equinox_model(activation):
    model = make_model(ModelConfig(width=8, depth=3, activation=activation, seed=4))
    x = np.linspace(-2, 2, 7, dtype=np.float32)[:, None]
    params = {k: np.asarray(v) for k, v in
              named_leaves(eqx.filter(model, eqx.is_inexact_array)).items()}
    expected = np.asarray(model(jnp.asarray(x)))
    got = forward(params, x, 3, activation_fn(activation, np))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_forward_broadcasts_leading_draw_axes():
    model = make_model(ModelConfig())
    params = {k: np.asarray(v) for k, v in
              named_leaves(eqx.filter(model, eqx.is_inexact_array)).items()}
    x = np.linspace(-1, 1, 5, dtype=np.float32)[:, None]
    batched = dict(params)
    batched["output_layer.bias"] = params["output_layer.bias"] + np.arange(6.0).reshape(2, 3, 1)
    out = forward(batched, x, 2, np.tanh)
    assert out.shape == (2, 3, 5, 1)
    base = forward(params, x, 2, np.tanh)
    np.testing.assert_allclose(out[1, 2] - base, 5.0, rtol=1e-5)


@pytest.mark.parametrize("depth,width", [(0, 4), (2, 16), (3, 5)])
def test_leaf_shapes_match_the_built_model(depth, width):
    cfg = ModelConfig(depth=depth, width=width)
    params = named_leaves(eqx.filter(make_model(cfg), eqx.is_inexact_array))
    assert leaf_shapes(cfg) == {path: leaf.shape for path, leaf in params.items()}
