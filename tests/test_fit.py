"""`headbayes.fit`: an equinox object and arrays in memory give the CLI's figures, write nothing
until `.save`, and come back with `load_run(dir, model=net)`."""

import gc
import re
import json
import os

import numpy as np
import pytest

import headbayes
from headbayes.core.errors import ConfigError
from headbayes.models import run_stages, stages_of

FIT = dict(experiment="tabular", body={"steps": 300, "patience": 100})
SETTINGS = ["+experiment=tabular", "body.steps=300", "body.patience=100"]


def _data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, (n, 2))
    y = 50 + 10 * np.sin(x[:, 0]) + 3 * x[:, 1] + rng.normal(0, 1, n)
    return x, y


def _net(seed=0, width=16):
    import equinox as eqx
    import jax

    return eqx.nn.MLP(2, 1, width, 1, activation=jax.nn.relu, key=jax.random.PRNGKey(seed))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """(posterior, x, y, the folder fit ran in): the tabular recipe on an equinox MLP."""
    cwd = tmp_path_factory.mktemp("notebook")
    before = os.getcwd()
    os.chdir(cwd)
    try:
        x, y = _data()
        post = headbayes.fit(_net(), x, y, progress=False, **FIT)
    finally:
        os.chdir(before)
    return post, x, y, cwd


def test_fit_gives_the_figures_of_the_same_settings_on_the_command_line_path(
        fitted, tmp_path, monkeypatch):
    """The same data as a csv and the same network from a `_target_` factory, composed from
    the command line's overrides: every figure of metrics.json is equal."""
    post, x, y, _ = fitted
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nets.py").write_text(
        "import equinox as eqx\nimport jax\n\n\n"
        "def mlp(key, in_features, out_features, width):\n"
        "    return eqx.nn.MLP(in_features, out_features, width, 1, activation=jax.nn.relu, "
        "key=key)\n")
    (tmp_path / "configs" / "model").mkdir(parents=True)
    (tmp_path / "configs" / "model" / "net.yaml").write_text("_target_: nets.mlp\nwidth: 16\n")
    rows = "".join(f"{a!r},{b!r},{t!r}\n" for (a, b), t in zip(x.tolist(), y.tolist()))
    (tmp_path / "table.csv").write_text("x0,x1,y\n" + rows)
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = headbayes.compose([*SETTINGS, "model=net", "data.path=table.csv", "data.target=y",
                             "mask.include=[layers.1]"])
    cli = headbayes.run(cfg, tmp_path / "run").metrics
    assert post.metrics["verdict"] == "ok"
    assert set(cli) == set(post.metrics)
    differ = {k: (cli[k], post.metrics[k]) for k in cli if cli[k] != post.metrics[k]}
    assert not differ


def test_fit_writes_nothing_until_save_and_save_is_an_ordinary_run_directory(fitted, tmp_path):
    post, x, _, cwd = fitted
    assert os.listdir(cwd) == []  # no outputs/, no compile cache, no data file
    assert post._folder.is_dir() and cwd not in post._folder.parents
    saved = post.save(tmp_path / "kept")
    assert json.loads((saved.path / "metrics.json").read_text()) == post.metrics
    assert (saved.path / "status.json").exists() and not (saved.path / ".lock").exists()
    with pytest.raises(ConfigError, match="exists and is not an empty folder"):
        post.save(tmp_path / "kept")
    np.testing.assert_array_equal(saved.predict(x[:5])["mean"], post.predict(x[:5])["mean"])


def test_a_posterior_removes_its_folder_when_dropped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    x, y = _data(60, seed=1)
    post = headbayes.fit(_net(), x, y, progress=False, sampler="exact",
                         likelihood={"sigma": 1.0}, report={"plots": False})
    folder = post._folder
    assert (folder / "run" / "metrics.json").is_file()
    del post
    gc.collect()
    assert not folder.exists()


def test_load_run_takes_the_network_back_and_refuses_another(fitted, tmp_path, monkeypatch):
    """In another process the run needs its network passed back in: any values (they come
    from the run's params.npz), the same layout; another layout names both."""
    from headbayes.models import given

    post, x, _, _ = fitted
    saved = post.save(tmp_path / "kept").path
    expected = post.predict(x[:3])["mean"]
    monkeypatch.setattr(given, "_GIVEN", {})  # a fresh process holds no given model
    with pytest.raises(ConfigError, match=r"load_run\(DIR, model=net\)"):
        headbayes.load_run(saved).predict(x[:3])
    other_values = headbayes.load_run(saved, model=_net(seed=7))
    np.testing.assert_array_equal(other_values.predict(x[:3])["mean"], expected)
    assert other_values.data()["test"]["x"].shape == (24, 2)
    with pytest.raises(ConfigError, match=r"fit with a MLP with 4 array leaves \(65 numbers\); "
                                          r"the model given is a MLP with 4 array leaves "
                                          r"\(33 numbers\)"):
        headbayes.load_run(saved, model=_net(width=8)).predict(x[:3])


def test_fit_options_are_refused_with_the_command_line_messages(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    x, y = _data(40)
    for given, overrides in (
            (dict(sampler={"name": "nuts", "num_chain": 4}), ["sampler=nuts",
                                                              "sampler.num_chain=4"]),
            (dict(prior={"sigma": -1.0}), ["prior.sigma=-1.0"]),
            (dict(seed="one"), ["seed=one"])):
        with pytest.raises(ConfigError) as from_cli:
            headbayes.compose(overrides)
        with pytest.raises(ConfigError) as from_fit:
            headbayes.fit(_net(), x, y, progress=False, **given)
        assert str(from_fit.value) == str(from_cli.value)
    assert os.listdir(tmp_path) == []
    with pytest.raises(ConfigError, match="x has 40 rows, y 39"):
        headbayes.fit(_net(), x, y[:-1])
    with pytest.raises(ConfigError, match="data.path: fit writes the data's file"):
        headbayes.fit(_net(), x, y, data={"path": "elsewhere.csv"})


@pytest.mark.slow  # 6 s: make test-all (the notebook's wine classifier covers it too)
def test_text_labels_make_a_classifier_and_predict_takes_a_frame_by_name(tmp_path,
                                                                         monkeypatch):
    import equinox as eqx
    import jax
    import pandas as pd

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"a": rng.normal(size=90), "b": rng.normal(size=90)})
    frame["kind"] = np.where(frame.a + frame.b > 0, "up", "down")
    net = eqx.nn.MLP(2, 2, 8, 1, activation=jax.nn.relu, key=jax.random.PRNGKey(0))
    post = headbayes.fit(net, frame, "kind", progress=False,
                         sampler={"name": "laplace", "warmup": 300, "keep": 200},
                         body={"mode": "pretrained", "steps": 300, "weight_decay": 1e-3},
                         prior={"sigma": 1.0}, report={"plots": False})
    assert post.config.likelihood.name == "categorical"
    assert post.metrics["accuracy"] >= 0.9
    new = pd.DataFrame({"b": [2.0, -2.0], "a": [2.0, -2.0]})  # columns in another order
    predicted = post.predict(new)
    assert list(predicted["predicted"]) == ["up", "down"]
    assert post.predict(new[["a", "b"]])["p_up"].tolist() == predicted["p_up"].tolist()


def test_report_shows_the_figures_and_plots_inline(fitted):
    post = fitted[0]
    shown = post.report()
    assert f"test_rmse               {post.metrics['test_rmse']:.4g}" in repr(shown)
    page = shown._repr_html_()
    assert page.count("<img src='data:image/png;base64,") == len(shown.plots) >= 2
    assert "<td>test_nll</td>" in page


@pytest.mark.parametrize("depth, final", [(2, "identity"), (1, "softplus"), (0, "tanh")])
def test_an_equinox_mlp_runs_stage_by_stage_as_its_own_forward(depth, final):
    """`equinox.nn.MLP` gets stages (`layers.i`): their forward is the MLP's, to the bit; its
    last layer is a linear head only without a final activation (depth 0 applies none)."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from headbayes.models import features, linear_head, run_from

    activation = {"identity": lambda v: v, "softplus": jax.nn.softplus, "tanh": jnp.tanh}[final]
    net = eqx.nn.MLP(3, 2, 8, depth, activation=jax.nn.relu, final_activation=activation,
                     key=jax.random.PRNGKey(1))
    assert stages_of(net) == tuple(f"layers.{i}" for i in range(depth + 1))
    x = jax.random.normal(jax.random.PRNGKey(2), (5, 3))
    whole = jax.vmap(net)(x)
    np.testing.assert_array_equal(jax.vmap(lambda e: run_stages(net, e, 0, None))(x), whole)
    if depth:
        np.testing.assert_array_equal(run_from(net, features(net, x, depth), depth), whole)
    assert linear_head(net) == (None if final == "softplus" else f"layers.{depth}")


CLASS = """
import equinox as eqx
import jax.numpy as jnp


class Head(eqx.Module):
    layer: eqx.nn.Linear

    def __call__(self, x):
        return {body}
"""


def _head_class(body: str):
    """A class `Head` of module 'notebook', as a notebook cell defines it (run again: a new
    class of the same name)."""
    namespace = {"__name__": "notebook"}
    exec(CLASS.format(body=body), namespace)  # noqa: S102 (the test's own source)
    return namespace["Head"]


def test_a_class_defined_again_is_another_model_and_another_layout():
    """A notebook cell run again with another forward: the same name, module and values, but
    another class; its digest (every cache's key) differs. A network passed back with another
    activation has another layout and is refused."""
    import equinox as eqx
    import jax

    from headbayes.models.given import give, receive

    linear = eqx.nn.Linear(3, 1, key=jax.random.PRNGKey(0))
    first = give(_head_class("jnp.tanh(self.layer(x))")(linear))
    second = give(_head_class("self.layer(x)")(linear))
    assert first.digest != second.digest and first.layout == second.layout
    relu = give(eqx.nn.MLP(3, 1, 8, 1, activation=jax.nn.relu, key=jax.random.PRNGKey(0)))
    tanh = eqx.nn.MLP(3, 1, 8, 1, activation=jax.numpy.tanh, key=jax.random.PRNGKey(0))
    with pytest.raises(ConfigError, match="pass the network the run was fit with"):
        receive(relu, tanh)
    assert receive(relu, eqx.nn.MLP(3, 1, 8, 1, activation=jax.nn.relu,
                                    key=jax.random.PRNGKey(5))).layout == relu.layout


def _configured(tmp_path, x, y, **options):
    from headbayes.app.fit import _config

    sections = {k: options.pop(k, None) for k in ("mask", "likelihood", "prior", "sampler",
                                                  "body")}
    return _config(_net(), x, y, tmp_path, options.pop("x_test", None),
                   options.pop("y_test", None), options.pop("experiment", None), sections,
                   options)


def test_fit_refuses_what_it_cannot_take_as_data_naming_the_column(tmp_path):
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40),
                          "t": rng.normal(size=40)})
    for bad, message in (
            (frame.assign(c=["u"] * 40), "column 'c' holds values that are not numbers"),
            (frame.rename(columns={"b": "${oc.env:HOME}"}), "would read as an interpolation"),
            (pd.concat([frame, frame[["a"]].rename(columns={"a": "a"})], axis=1),
             "more than one column is named 'a'")):
        with pytest.raises(ConfigError, match=re.escape(message)):
            _configured(tmp_path, bad, "t")
    flagged = frame.assign(t=frame.t, flag=frame.a > 0)[["a", "flag", "t"]]
    cfg = _configured(tmp_path, flagged, "t")  # bool inputs as 0 and 1
    with np.load(cfg.data.path) as written:
        assert set(np.unique(written["flag"])) == {0.0, 1.0}
    labels = pd.Series(["up", "down"] * 19 + ["up", None])
    with pytest.raises(ConfigError, match="y: no label at position 39"):
        _configured(tmp_path, frame[["a", "b"]], labels)
    with pytest.raises(ConfigError, match="y_test: the target column is 't'"):
        _configured(tmp_path, frame, "t", x_test=frame.rename(columns={"t": "u"}), y_test="u")
    with pytest.raises(ConfigError, match="brings its own data"):
        _configured(tmp_path, frame, "t", experiment="sin3_head")


def test_fit_takes_mask_groups_and_names_the_users_data_in_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    x, y = _data(40)
    groups = {"weights": {"include": ["layers.1.weight"], "sampler": {"name": "nuts"}},
              "bias": {"include": ["layers.1.bias"], "sampler": {"name": "mala"}}}
    cfg = _configured(tmp_path, x, y, sampler="gibbs", mask={"include": ["layers.1"],
                                                              "groups": groups})
    assert list(cfg.mask.groups) == ["weights", "bias"]
    x[5, 1] = np.nan
    with pytest.raises(ConfigError) as refused:
        headbayes.fit(_net(), x, y, progress=False)
    assert str(refused.value).startswith("x, y: holds a non-finite value (nan) in column 'x1'")
    assert "headbayes-fit-" not in str(refused.value)


STAGED = """
import equinox as eqx
import jax.numpy as jnp


class Staged(eqx.Module):
    a: eqx.nn.Linear
    b: eqx.nn.Linear
    stages = ("a", "b")

    def run_stages(self, h, start=0, stop=None):
        layers = [self.a, self.b][start:stop]
        for layer in layers:
            h = {step}
        return h

    def __call__(self, x):
        return self.b(jnp.tanh(self.a(x)))
"""


def test_stages_that_do_not_compose_to_the_forward_are_refused_before_sampling(tmp_path):
    """run_stages whose pieces give another shape than the forward (a user's slip) is named
    before anything is compiled, instead of a dot_general traceback from the head's
    statistics."""
    import jax

    namespace = {"__name__": "notebook"}
    step = "jnp.zeros(3) + layer(h).sum() if layer is self.a else jnp.zeros(1) + h.sum()"
    exec(STAGED.format(step=step), namespace)  # noqa: S102
    keys = jax.random.split(jax.random.PRNGKey(0))
    import equinox as eqx

    net = namespace["Staged"](eqx.nn.Linear(2, 9, key=keys[0]), eqx.nn.Linear(9, 1, key=keys[1]))
    x, y = _data(40)
    with pytest.raises(ConfigError, match=r"the stages before its last \(b\) give shape \(3,\), "
                                          r"and b takes \(9,\)"):
        headbayes.fit(net, x, y, progress=False, sampler="exact")
