"""A user's own equinox model, from a directory holding only mymodels.py, configs/model/*.yaml
and a csv: run, report, predict, from the command line and from Python."""

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

import headbayes
from headbayes.core.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "own_model"
RUN = ["model=resnet", "model.width=8", "model.blocks=1", "data=csv", "data.path=table.csv",
       "data.inputs=[a,b]", "data.target=y", "body=pretrained", "body.steps=300",
       "mask.include=[readout]", "likelihood.reduction=sum", "likelihood.sigma=0.2",
       "prior.sigma=1.0", "sampler=nuts", "sampler.warmup=100", "sampler.keep=100",
       "sampler.num_chains=2"]


def make_user_dir(root: Path) -> Path:
    """mymodels.py and configs/model/resnet.yaml from the example, and a csv in original units
    far from standardised ones (y around 100, sd about 10)."""
    (root / "configs" / "model").mkdir(parents=True)
    shutil.copy(EXAMPLE / "mymodels.py", root)
    shutil.copy(EXAMPLE / "configs" / "model" / "resnet.yaml", root / "configs" / "model")
    rng = np.random.default_rng(3)
    a, b = rng.uniform(-2, 2, 80), rng.uniform(0, 5, 80)
    y = 100 + 10 * np.sin(a) + 2 * b + rng.normal(0, 1, 80)
    with open(root / "table.csv", "w") as f:
        f.write("a,b,y\n" + "".join(f"{u:.6f},{v:.6f},{w:.6f}\n" for u, v, w in zip(a, b, y)))
    return root


@pytest.fixture(scope="module")
def user_run(tmp_path_factory):
    """(user directory, run directory, CompletedProcess of `headbayes run`)."""
    import os
    import subprocess
    import sys

    root = make_user_dir(tmp_path_factory.mktemp("user"))
    env = {**os.environ, "HEADBAYES_OUTPUT_DIR": str(root / "outputs"), "COLUMNS": "200"}
    run_dir = root / "run"

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "headbayes", *map(str, args)], cwd=root,
                              env=env, capture_output=True, text=True)

    result = cli("run", *RUN, f"hydra.run.dir={run_dir}")
    return root, run_dir, result, cli


def read_csv(path: Path) -> dict:
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def test_own_model_runs_reports_with_exact_reference_and_predicts(user_run, monkeypatch):
    from headbayes.report.diagnostics import ess_bulk
    from headbayes.report.write import compute_report

    root, run_dir, result, cli = user_run
    assert result.returncode == 0, result.stdout + result.stderr
    figures = headbayes.load_run(run_dir).metrics
    assert {"map_test_rmse", "map_test_nll", "test_rmse", "test_nll"} <= set(figures)
    # the readout is an eqx.nn.Linear: the exact Gaussian posterior is the reference, and
    # NUTS's means are within 4 Monte-Carlo standard errors (from the bulk ESS) of it
    monkeypatch.chdir(root)
    exact = compute_report(run_dir)[1]["exact"]
    draws = np.concatenate([headbayes.load_run(run_dir).draws(p).reshape(2, 100, -1)
                            for p in exact.paths], axis=2).astype(np.float64)
    pooled = draws.reshape(-1, draws.shape[2])
    mcse = pooled.std(axis=0, ddof=1) / np.sqrt(ess_bulk(draws))
    assert np.all(np.abs(pooled.mean(axis=0) - exact.mean) / mcse < 4)
    (root / "new.csv").write_text("a,b\n-1.5,1\n0,2.5\n1.5,4\n")
    predicted = cli("predict", run_dir, "--input", "new.csv", "--output", "out.csv")
    assert predicted.returncode == 0, predicted.stderr
    table = read_csv(root / "out.csv")
    assert list(table) == ["a", "b", "mean", "sd", "q05", "q50", "q95", "mean_f", "sd_f",
                           "q05_f", "q50_f", "q95_f"]
    truth = 100 + 10 * np.sin(table["a"]) + 2 * table["b"]  # original units, not standardised
    assert np.all(np.abs(table["mean"] - truth) < 3)
    assert np.all(table["q05"] < table["q50"]) and np.all(table["q50"] < table["q95"])
    assert np.all(table["sd"] > table["sd_f"])  # observation noise widens the predictive
    assert np.all(table["q95"] - table["q05"] > table["q95_f"] - table["q05_f"])


def test_python_api_gives_the_same_predictions(user_run, monkeypatch):
    root, run_dir, _, _ = user_run
    monkeypatch.chdir(root)  # where mymodels.py is, as for the command line
    run = headbayes.load_run(run_dir)
    assert run.config.model._target_ == "mymodels.make_net"
    assert run.draws("readout.weight").shape == (2, 100, 1, 8)
    table = read_csv(root / "out.csv")
    got = run.predict({"a": table["a"], "b": table["b"]})
    np.testing.assert_allclose(got["mean"], table["mean"], rtol=1e-6)
    np.testing.assert_allclose(got["q95_f"], table["q95_f"], rtol=1e-6)


def test_python_api_runs_from_the_user_directory(user_run, monkeypatch):
    root = user_run[0]  # one folder per process: `mymodels` is imported once
    monkeypatch.chdir(root)
    sgld = [o for o in RUN if not o.startswith("sampler")] + [
        "sampler=sgld", "sampler.step_size=1e-4", "sampler.warmup=50", "sampler.keep=20",
        "sampler.num_chains=2", "body.steps=50"]
    run = headbayes.run(headbayes.compose(sgld), root / "api_run")
    assert run.metrics["num_draws"] == 40
    assert (root / "api_run" / "predictive.png").is_file()
    assert run.predict(np.array([[0.0, 2.5]]))["mean"].shape == (1,)


@pytest.mark.parametrize("content, code, message", [
    ("a\n1\n", 2, "missing: b; other: none"),
    ("a,b,c\n1,2,3\n", 2, "missing: none; other: c"),
    ("a,b\n1,2\n1,oops\n", 2, "line 3, column 'b': 'oops' is not a number"),
    ("a,b\n1,2\n1,nan\n", 2, "holds a non-finite value (nan) in column 'b', data row 2"),
])
def test_predict_refuses_bad_input_files(user_run, content, code, message):
    root, run_dir, _, cli = user_run
    (root / "bad.csv").write_text(content)
    result = cli("predict", run_dir, "--input", "bad.csv")
    assert result.returncode == code and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_predict_takes_columns_by_name_and_ignores_the_target(user_run, monkeypatch, capsys):
    from headbayes.app.cli import run_cli

    root, run_dir, _, _ = user_run
    monkeypatch.chdir(root)
    (root / "plain.csv").write_text("a,b\n0.5,1\n-1,4\n")
    (root / "shuffled.csv").write_text("y,b,a\n100,1,0.5\n90,4,-1\n")
    for name in ("plain", "shuffled"):
        assert run_cli(["predict", str(run_dir), "--input", f"{name}.csv", "--output",
                        f"{name}_out.csv"]) == 0
    err = capsys.readouterr().err
    assert "note: column y of" in err and "is the run's target: ignored" in err
    assert (root / "plain_out.csv").read_text() == (root / "shuffled_out.csv").read_text()


@pytest.mark.slow  # 4 s: make test-all
def test_predict_refuses_unfinished_and_corrupt_runs(user_run, tmp_path):
    root, run_dir, _, cli = user_run
    (root / "ok.csv").write_text("a,b\n0,1\n")
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    (copy / "status.json").unlink()  # as a killed run leaves it
    result = cli("predict", copy, "--input", "ok.csv")
    assert result.returncode == 2 and "holds no finished run" in result.stderr
    shutil.copy(run_dir / "status.json", copy)
    (copy / "params.npz").write_bytes(b"not an npz")
    result = cli("predict", copy, "--input", "ok.csv")
    assert result.returncode == 4 and "params.npz" in result.stderr


def test_unknown_factory_key_and_missing_module_exit_2(tmp_path, monkeypatch):
    monkeypatch.chdir(make_user_dir(tmp_path))
    with pytest.raises(ConfigError, match=r"model 'mymodels.make_net' has no key model.depth; "
                                          r"its keys: width, blocks"):
        headbayes.compose([*RUN, "model.depth=3"])
    with pytest.raises(ConfigError, match=r"has no key model.name, .* pick it with model=NAME"):
        headbayes.compose(["model._target_=mymodels.make_net"])  # om00: the mlp's keys stay
    (tmp_path / "configs" / "model" / "gone.yaml").write_text("_target_: nomodule.make\n")
    with pytest.raises(ConfigError, match="cannot import module 'nomodule'"):
        headbayes.compose(["model=gone", *RUN[3:]])


LOCAL_CLASS = """
import equinox as eqx
import jax


def make(key, in_features, out_features):
    class Readout(eqx.Module):
        layer: eqx.nn.Linear

        def __call__(self, h):
            return self.layer(h)

    class Net(eqx.Module):
        hidden: eqx.nn.Linear
        readout: eqx.Module

        def __call__(self, x):
            return self.readout(jax.nn.tanh(self.hidden(x)))

    k1, k2 = jax.random.split(key)
    net = Net(eqx.nn.Linear(in_features, 8, key=k1),
              Readout(eqx.nn.Linear(8, out_features, key=k2)))
    return net
"""


def test_a_model_class_defined_inside_its_factory_is_refused_by_name(tmp_path, monkeypatch):
    """F4: each call of the factory made a new class, which JAX took for another tree (a
    pytree traceback after compiling)."""
    monkeypatch.chdir(make_user_dir(tmp_path))
    (tmp_path / "local.py").write_text(LOCAL_CLASS)
    (tmp_path / "configs" / "model" / "local.yaml").write_text("_target_: local.make\n")
    with pytest.raises(ConfigError, match=r"model local.make: class local.make.<locals>.Net is "
                                          r"defined inside a function.*module level"):
        headbayes.compose(["model=local", *RUN[3:]])


def test_the_run_keeps_its_split_and_gives_its_data_back(user_run, monkeypatch):
    root, run_dir, result, _ = user_run
    assert result.returncode == 0, result.stderr
    monkeypatch.chdir(root)
    table = read_csv(root / "table.csv")
    split = np.load(run_dir / "split.npz")
    assert sorted(split.files) == ["test", "train"]
    assert sorted(np.concatenate([split["train"], split["test"]]).tolist()) == list(range(80))
    data = headbayes.load_run(run_dir).data()
    assert set(data) == {"train", "test"} and len(data["test"]["y"]) == 16
    for part, values in data.items():
        np.testing.assert_array_equal(values["rows"], split[part])
        rows = values["rows"]
        np.testing.assert_allclose(values["x"], np.stack([table["a"][rows], table["b"][rows]], 1),
                                   rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(values["y"], table["y"][rows], rtol=1e-6)


def test_a_chosen_model_owns_its_keys_under_an_experiment(tmp_path, monkeypatch):
    """An experiment's model keys (tabular: width 50, depth 1, relu) are its MLP's: they broke
    a user's model=NAME (no key model.depth) and would have replaced its width."""
    monkeypatch.chdir(make_user_dir(tmp_path))
    tabular = ["+experiment=tabular", "data.path=table.csv", "data.target=y"]
    with pytest.raises(ConfigError, match=r"'output_layer' \(mask=head\) is the built-in "
                                          r"models' last layer, this model's is 'readout': "
                                          r"mask.include=\[readout\]"):
        headbayes.compose([*tabular, "model=resnet"])
    cfg = headbayes.compose([*tabular, "model=resnet", "mask.include=[readout]"])
    assert cfg.model.kwargs == {"width": 32, "blocks": 2}  # the model file's
    cfg = headbayes.compose([*tabular, "model=resnet", "model.blocks=1", "mask.include=[readout]"])
    assert cfg.model.kwargs == {"width": 32, "blocks": 1}  # and the command line's
    assert headbayes.compose([*tabular, "model=mlp"]).model.width == 50  # its own model: kept


def test_an_exact_reference_without_stages_names_what_to_add(tmp_path, monkeypatch):
    from headbayes.analysis.exact import not_applicable_reason

    monkeypatch.chdir(make_user_dir(tmp_path))
    (tmp_path / "flat.py").write_text(
        "import equinox as eqx\n\n\nclass Flat(eqx.Module):\n    readout: eqx.nn.Linear\n\n"
        "    def __call__(self, x):\n        return self.readout(x)\n\n\n"
        "def make(*, key, in_features, out_features):\n"
        "    return Flat(eqx.nn.Linear(in_features, out_features, key=key))\n")
    (tmp_path / "configs" / "model" / "flat.yaml").write_text("_target_: flat.make\n")
    cfg = headbayes.compose(["model=flat", *RUN[3:]])
    assert "give its class `stages` (leaf-path prefixes in forward order) and `run_stages(" \
        in not_applicable_reason(cfg, ["readout.weight", "readout.bias"])


def test_a_model_in_the_running_script_is_named_before_sampling(tmp_path, monkeypatch):
    import sys
    import types

    monkeypatch.chdir(make_user_dir(tmp_path))
    script = types.ModuleType("__main__")
    exec(compile((EXAMPLE / "mymodels.py").read_text(), "script.py", "exec"), script.__dict__)
    monkeypatch.setitem(sys.modules, "__main__", script)
    (tmp_path / "configs" / "model" / "inline.yaml").write_text(
        "_target_: __main__.make_net\nwidth: 8\nblocks: 1\n")
    with pytest.warns(UserWarning, match=r"__main__.make_net is defined in the script or "
                                         r"notebook being run.*name it as module.make_net"):
        headbayes.compose(["model=inline", *RUN[3:]])


def test_predict_in_row_blocks_equals_one_block(user_run, monkeypatch):
    """Rows are predicted in blocks under a memory bound; the function's figures (no noise
    replicates) do not depend on the blocks."""
    from headbayes.report.predict import predict_arrays

    root, run_dir, _, _ = user_run
    monkeypatch.chdir(root)
    x = np.array([[-1.0, 1.0], [0.0, 2.0], [1.0, 3.0], [2.0, 4.0], [0.5, 0.5]])
    whole = predict_arrays(run_dir, x)
    blocks = predict_arrays(run_dir, x, max_bytes=16 * 200 * 2)  # 2 rows per block
    for key in ("mean", "sd", "mean_f", "sd_f", "q05_f", "q95_f"):
        np.testing.assert_allclose(blocks[key], whole[key], rtol=1e-6)


def test_python_api_never_overwrites_another_runs_chain(tmp_path):
    cfg = headbayes.compose(["+experiment=sin_head", "sampler.warmup=20", "sampler.keep=10"])
    run = headbayes.run(cfg, tmp_path / "run")
    before = run.draws("output_layer.bias").copy()
    other = headbayes.compose(["+experiment=sin_head", "sampler.warmup=20", "sampler.keep=10",
                               "seed=1"])
    from headbayes.core.errors import OtherRunInDir

    with pytest.raises(OtherRunInDir, match=r"seed \(saved 0, given 1\)"):
        headbayes.run(other, tmp_path / "run")
    np.testing.assert_array_equal(headbayes.load_run(tmp_path / "run").draws("output_layer.bias"),
                                  before)
    assert headbayes.run(cfg, tmp_path / "run").metrics["num_draws"] == 10  # same: resumes
