"""Property test: random override sets never crash the command; they succeed or exit 2."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headbayes.app import cli

KEYS = ["seed", "data.n_train", "data.noise_std", "data.x_min", "data.x_max", "data.eval_step",
        "data.n_test", "data.name", "model.width", "model.depth", "model.activation",
        "model.in_features", "likelihood.sigma", "likelihood.reduction", "prior.sigma",
        "sampler.step_size", "sampler.temperature", "sampler.warmup", "sampler.keep",
        "sampler.thin", "sampler.num_chains", "sampler.init_jitter", "sampler.mass_matrix",
        "sampler.target_accept", "sampler.batch_size", "model.cache_features", "mask.include",
        "mask.exclude", "body.mode", "body.lr",
        "sampler.stepsize", "modle.width", "hydra"]
VALUES = st.one_of(
    st.integers(-5, 10**6).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "inf", "-inf", "", "null", "true", "[]", "[output_layer]",
                     "[hidden_layers.*.bias]", "[nope]", "tanh", "relu", "mean", "sum", "dense",
                     "joint", "sin3", "gap", "csv", "'a b'", "[1", "{}", "1e-3", "-1e-3"]),
    st.text(max_size=8))
GROUPS = st.sampled_from(["sampler=nuts", "sampler=vi", "sampler=nope", "data=gap", "body=joint",
                          "mask=biases", "mask=all", "+experiment=sin_head", "+experiment=nope",
                          "data=friedman1", "model=mlp"])
OVERRIDES = st.lists(st.one_of(st.tuples(st.sampled_from(KEYS), VALUES).map("=".join), GROUPS),
                     max_size=5)


def exits_0_or_2(overrides):
    code = cli.run_cli(["inspect", *overrides])  # compose, type and range checks, mask: no JAX
    assert code in (0, 2)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OVERRIDES)
def test_random_overrides_exit_0_or_2(overrides):
    exits_0_or_2(overrides)


@pytest.mark.slow  # ~30 s; `make test-all`
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OVERRIDES)
def test_300_random_overrides_exit_0_or_2(overrides):
    exits_0_or_2(overrides)


@pytest.mark.parametrize("overrides", [["sampler.step_size=nan"], ["data.eval_step=1e-300"],
                                       ["model.depth=300"], ["seed=1e400"], ["data.name=[]"],
                                       ["sampler.name={}"]])
def test_known_edge_cases(overrides):
    assert cli.run_cli(["inspect", *overrides]) in (0, 2)
