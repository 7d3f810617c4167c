import equinox as eqx
import jax
import numpy as np
import pytest

from headbayes.core.errors import ConfigError
from headbayes.models.mask import build_mask, leaf_table, named_leaves, selector_matches
from conftest import make_mlp


@pytest.fixture(scope="module")
def params():
    return eqx.filter(make_mlp(), eqx.is_inexact_array)


def sampled(params, include, exclude=()):
    return sorted(p for p, flag in named_leaves(build_mask(params, include, list(exclude))).items()
                  if flag)


def test_leaf_paths(params):
    assert list(named_leaves(params)) == [
        "hidden_layers.0.weight", "hidden_layers.0.bias", "hidden_layers.1.weight",
        "hidden_layers.1.bias", "output_layer.weight", "output_layer.bias"]


@pytest.mark.parametrize("selector,path,expected", [
    ("output_layer.weight", "output_layer.weight", True),
    ("output_layer", "output_layer.weight", True),
    ("output", "output_layer.weight", False),
    ("hidden_layers.*.bias", "hidden_layers.1.bias", True),
    ("hidden_layers.*.bias", "hidden_layers.1.weight", False),
    ("hidden_layers.1", "hidden_layers.10.bias", False),
])
def test_selector_matching(selector, path, expected):
    assert selector_matches(selector, path) is expected


def test_exact_prefix_glob_and_exclude(params):
    assert sampled(params, ["output_layer.weight"]) == ["output_layer.weight"]
    assert sampled(params, ["output_layer"]) == ["output_layer.bias", "output_layer.weight"]
    assert sampled(params, ["*.bias"]) == ["hidden_layers.0.bias", "hidden_layers.1.bias",
                                           "output_layer.bias"]
    assert sampled(params, ["*"], ["hidden_layers.0"]) == [
        "hidden_layers.1.bias", "hidden_layers.1.weight", "output_layer.bias",
        "output_layer.weight"]


def test_unmatched_selector_lists_paths_and_closest(params):
    with pytest.raises(ConfigError, match=r"`mask.include` selector 'outptu_layer' matches no "
                                          r"parameter; closest: 'output_layer'. Available paths: "
                                          r"hidden_layers.0.weight"):
        build_mask(params, ["outptu_layer"], [])
    with pytest.raises(ConfigError, match="`mask.exclude` selector 'nope'"):
        build_mask(params, ["output_layer"], ["nope"])


def test_empty_selection_is_an_error(params):
    with pytest.raises(ConfigError, match="`mask` selects no parameter"):
        build_mask(params, ["output_layer"], ["output_layer"])


def test_mask_is_python_bools_with_param_structure(params):
    mask = build_mask(params, ["output_layer"], [])
    assert jax.tree.structure(mask) == jax.tree.structure(params)
    assert all(type(flag) is bool for flag in jax.tree.leaves(mask))


def test_leaf_table_counts(params):
    shapes = {path: leaf.shape for path, leaf in named_leaves(params).items()}
    table = leaf_table(shapes, named_leaves(build_mask(params, ["output_layer"], [])))
    assert (table["sampled_size"], table["total_size"]) == (17, 321)
    assert (table["sampled_leaves"], table["total_leaves"]) == (2, 6)


def test_partition_recombine_round_trip(params):
    mask = build_mask(params, ["hidden_layers.1.bias", "output_layer.weight"], [])
    position, frozen = eqx.partition(params, mask)
    assert set(named_leaves(position)) == {"hidden_layers.1.bias", "output_layer.weight"}
    assert len(named_leaves(frozen)) == 4
    combined = eqx.combine(position, frozen)
    for path, leaf in named_leaves(params).items():
        np.testing.assert_array_equal(named_leaves(combined)[path], leaf)
