from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import headbayes
from conftest import make_mlp
from headbayes.datasets import make_dataset
from headbayes.datasets.synthetic import CurveOptions, eval_grid
from headbayes.core.errors import ConfigError
from headbayes.models.mask import named_leaves
from headbayes.models import features, first_sampled_stage, forward, leaf_shapes, linear_head


def printed(values) -> list[str]:
    """float32 values as numpy prints them (shortest round-trip repr, at most 8 significant
    digits)."""
    return [np.format_float_positional(v, precision=8, fractional=False, trim="-")
            for v in np.asarray(values, np.float32).ravel()]


def test_seed_initial_values_exactly():
    params = named_leaves(eqx.filter(make_mlp(), eqx.is_inexact_array))
    assert printed(params["output_layer.bias"]) == ["0.1228435"]
    assert printed(params["output_layer.weight"][0, :3]) == ["-0.2155745", "-0.15261674",
                                                             "-0.12505025"]
    assert printed(params["hidden_layers.0.weight"][:3, 0]) == ["-0.43456006", "0.5761945",
                                                                "-0.20483303"]
    assert sum(p.size for p in params.values()) == 321


def test_seed_data():
    data = make_dataset(CurveOptions())
    x = np.linspace(-1, 1, 32).astype(np.float32)
    noise = np.random.default_rng(0).normal(size=32)
    np.testing.assert_array_equal(data.x_train[:, 0], x)
    np.testing.assert_array_equal(data.y_train[:, 0],
                                  (np.sin(np.pi * x) + 0.05 * noise).astype(np.float32))
    assert data.x_train.dtype == data.y_train.dtype == np.float32


def test_eval_grid_is_inclusive():
    grid = eval_grid(CurveOptions())
    assert grid.shape == (101,)
    assert grid[0] == -1.0 and abs(grid[-1] - 1.0) < 1e-6
    np.testing.assert_allclose(np.diff(grid), 0.02, atol=1e-6)


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "silu"])
def test_mlp_batched_equals_one_example_at_a_time(activation):
    model = make_mlp(width=8, depth=3, activation=activation, seed=4)
    x = jnp.linspace(-2, 2, 7)[:, None]
    one_by_one = jax.vmap(model)(x)
    np.testing.assert_allclose(model(x), one_by_one, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(forward(model, x), one_by_one, rtol=1e-6, atol=1e-7)
    h = features(model, x, 2)
    np.testing.assert_allclose(model.run_stages(h, 2), one_by_one, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("depth,width", [(0, 4), (2, 16), (3, 5)])
def test_leaf_shapes_match_the_built_model(depth, width):
    cfg = headbayes.compose(["+experiment=sin_head", f"model.depth={depth}",
                             f"model.width={width}"])
    from headbayes.engine.programs import build_model

    params = named_leaves(eqx.filter(build_model(cfg), eqx.is_inexact_array))
    assert leaf_shapes(cfg) == {path: leaf.shape for path, leaf in params.items()}


@pytest.mark.slow  # about 4-6 s: make test-all
def test_cnn_stages_compose_to_the_full_forward():
    pixels = ",".join(f"p{i}" for i in range(16))
    cfg = headbayes.compose(["+experiment=sin_head", "model=cnn", "data=npz", "data.path=x.npz",
                             f"data.inputs=[{pixels}]", "data.target=y"])
    from headbayes.engine.programs import build_model

    model = build_model(cfg)
    assert model.stages == ("convs.0", "convs.1", "hidden", "output_layer")
    assert linear_head(model) == "output_layer"
    x = jax.random.normal(jax.random.PRNGKey(1), (5, 16))
    full = forward(model, x)
    assert full.shape == (5, 1)
    for k in range(1, 4):
        rest = jax.vmap(lambda e: model.run_stages(e, k, None))(features(model, x, k))
        np.testing.assert_allclose(rest, full, rtol=1e-5, atol=1e-6)
    sampled = {p: p.startswith("hidden") for p in leaf_shapes(cfg)}
    assert first_sampled_stage(model, sampled) == 2


def test_cnn_needs_a_square_number_of_pixels():
    from headbayes.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"`model.in_features` must be a square number"):
        headbayes.compose(["+experiment=sin_head", "model=cnn", "data=friedman1"])


@pytest.mark.slow  # about 4-6 s: make test-all
def test_cnn_runs_and_reports_with_its_readout_exact(tmp_path, monkeypatch):
    """The shipped cnn on 4x4 images from an npz file: a Bayesian last layer, the report's
    exact reference found through the cnn's stages, predictions on new images."""
    rng = np.random.default_rng(0)
    images = rng.normal(size=(60, 16))
    y = images[:, :8].mean(axis=1) - images[:, 8:].mean(axis=1) + 0.1 * rng.normal(size=60)
    np.savez(tmp_path / "images.npz", y=y, **{f"p{i}": images[:, i] for i in range(16)})
    monkeypatch.chdir(tmp_path)
    pixels = ",".join(f"p{i}" for i in range(16))
    cfg = headbayes.compose(["+experiment=sin_head", "model=cnn", "data=npz",
                             "data.path=images.npz", f"data.inputs=[{pixels}]", "data.target=y",
                             "likelihood.reduction=sum", "likelihood.sigma=0.5",
                             "sampler.step_size=1e-4", "sampler.warmup=50", "sampler.keep=20"])
    run = headbayes.run(cfg, tmp_path / "run")
    assert {"exact_band_median", "mean_z_max", "test_nll"} <= set(run.metrics)
    assert run.draws("output_layer.weight").shape == (1, 20, 1, 32)
    assert run.predict(images[:3])["mean"].shape == (3,)


@pytest.mark.slow
def test_every_shipped_model_has_the_values_of_xla_default_compile():
    """`build_model` compiles with `xla.ONCE_OPTIONS`; the values must be those of XLA's
    defaults bit for bit (a run's chain starts from them)."""
    from headbayes.engine.programs import build_model
    from headbayes.models import construct, model_key

    shipped = Path(headbayes.__file__).parent / "configs" / "experiment"
    experiments = sorted(p.stem for p in shipped.glob("*.yaml"))
    seen = set()
    for name in experiments:
        try:
            cfg = headbayes.compose([f"+experiment={name}"])
        except ConfigError:  # an experiment that needs the user's file
            continue
        if model_key(cfg) in seen:
            continue
        seen.add(model_key(cfg))
        built = jax.tree.leaves(eqx.filter(build_model(cfg), eqx.is_array))
        default = jax.tree.leaves(eqx.filter(eqx.filter_jit(lambda: construct(cfg))(),
                                             eqx.is_array))
        assert len(built) == len(default), name
        for a, b in zip(built, default):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=name)
    assert len(seen) >= 6
