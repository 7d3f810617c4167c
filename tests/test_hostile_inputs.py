"""Cases of the third round of hostile and faulty inputs: each was a crash, a silent wrong
answer or a destroyed file, and is now a clear refusal or a right answer."""

import csv
import re
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import headbayes
from headbayes.app.cli import run_cli
from headbayes.app.session import owned, sample
from headbayes.core.errors import ConfigError, SamplingError
from run_edits import replace_with, rerecord

SMALL = ["sampler.warmup=20", "sampler.keep=10", "sampler.num_chains=2", "report.plots=false"]
LABELS = ['plain', 'say "hi"', 'x, y']


def finished_run(run_dir, overrides):
    with owned(run_dir):
        sample(headbayes.compose([*overrides, *SMALL]), run_dir, lambda *a: None)
    return run_dir


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """A finished categorical run whose class names hold a comma and quotes."""
    root = tmp_path_factory.mktemp("classifier")
    rng = np.random.default_rng(0)
    rows = ["x1,x2,label"]
    for _ in range(60):
        k = int(rng.integers(3))
        rows.append(f"{k + rng.normal(0, 0.3):.4f},{rng.normal():.4f},"
                    f"\"{LABELS[k].replace(chr(34), chr(34) * 2)}\"")
    (root / "train.csv").write_text("\n".join(rows) + "\n")
    (root / "new.csv").write_text("x1,x2\n0.0,0.1\n2.0,-0.3\n")
    run = finished_run(root / "run", ["data=csv", f"data.path={root / 'train.csv'}",
                                      "data.target=label", "data.classes=true",
                                      "likelihood=categorical"])
    return root, run


@pytest.fixture(scope="module")
def regression(tmp_path_factory):
    return finished_run(tmp_path_factory.mktemp("regression") / "run", [])


def test_predict_prints_text_class_names(classifier, capsys):
    root, run = classifier
    assert run_cli(["predict", str(run), "--input", str(root / "new.csv")]) == 0
    out = capsys.readouterr().out
    assert "plain" in out and "x, y" in out


def test_predict_csv_quotes_class_names(classifier, tmp_path, capsys):
    root, run = classifier
    output = tmp_path / "out.csv"
    assert run_cli(["predict", str(run), "--input", str(root / "new.csv"), "--output",
                    str(output)]) == 0
    with open(output, newline="") as f:
        rows = list(csv.reader(f))
    assert all(len(row) == len(rows[0]) for row in rows)
    header = rows[0]
    assert [f"p_{name}" for name in LABELS] == [h for h in header if h.startswith("p_")]
    predicted = [row[header.index("predicted")] for row in rows[1:]]
    assert len(predicted) == 2 and set(predicted) <= set(LABELS)


@pytest.mark.parametrize("kind", ["fifo", "folder", "link"])
def test_predict_never_replaces_an_output_that_is_not_a_regular_file(regression, tmp_path,
                                                                     capsys, kind):
    """B11 (round 5): a link was replaced by a regular file."""
    (tmp_path / "in.csv").write_text("x\n0.5\n")
    (tmp_path / "kept.csv").write_text("kept\n")
    output = tmp_path / "target.csv"
    replace_with(output, kind, link_to=tmp_path / "kept.csv")
    code = run_cli(["predict", str(regression), "--input", str(tmp_path / "in.csv"),
                    "--output", str(output)])
    assert code == 2
    assert "is not a regular file" in capsys.readouterr().err
    assert {"fifo": output.is_fifo, "folder": output.is_dir, "link": output.is_symlink}[kind]()
    assert (tmp_path / "kept.csv").read_text() == "kept\n"


def test_an_input_named_like_a_predict_column_keeps_its_values(tmp_path, capsys):
    """Round 6: an input column named mean (or p_0) was overwritten by the predictive's."""
    table = tmp_path / "t.csv"
    table.write_text("mean,y\n" + "".join(f"{i / 40},{np.sin(i / 7):.4f}\n" for i in range(40)))
    run = finished_run(tmp_path / "run", ["data=csv", f"data.path={table}", "data.target=y"])
    (tmp_path / "new.csv").write_text("mean\n0.125\n0.5\n")
    assert run_cli(["predict", str(run), "--input", str(tmp_path / "new.csv"), "--output",
                    str(tmp_path / "out.csv")]) == 0
    assert "input column mean written as input_mean" in capsys.readouterr().err
    with open(tmp_path / "out.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["input_mean"]) for r in rows] == [0.125, 0.5]
    assert all(float(r["q05"]) <= float(r["mean"]) <= float(r["q95"]) for r in rows)


def test_predict_never_writes_into_the_run_directory(regression, tmp_path, capsys):
    """B4 (round 5): --output RUN/params.npz replaced the run's parameters."""
    run = Path(shutil.copytree(regression, tmp_path / "run"))
    (tmp_path / "in.csv").write_text("x\n0.5\n")
    params = (run / "params.npz").read_bytes()
    for output in (run / "params.npz", run / "new.csv"):
        assert run_cli(["predict", str(run), "--input", str(tmp_path / "in.csv"),
                        "--output", str(output)]) == 2
        assert "lies inside the run directory" in capsys.readouterr().err
    assert (run / "params.npz").read_bytes() == params and not (run / "new.csv").exists()


@pytest.mark.parametrize("kind", ["fifo", "link", "folder"])
def test_summarize_never_replaces_a_summary_that_is_not_a_regular_file(tmp_path, capsys,
                                                                       kind):
    """B10 (round 5): a FIFO or link at SWEEP/summary.csv was replaced (exit 0)."""
    sweep = tmp_path / "sweep"
    finished_run(sweep / "0", [])
    (sweep / "0" / ".hydra").mkdir()
    (sweep / "0" / ".hydra" / "overrides.yaml").write_text("- seed=0\n")
    replace_with(sweep / "summary.csv", kind, link_to=tmp_path / "elsewhere.csv")
    assert run_cli(["summarize", str(sweep)]) == 2
    assert "is not a regular file" in capsys.readouterr().err
    assert not (tmp_path / "elsewhere.csv").exists()


def test_predict_refuses_a_two_dimensional_npz_column(regression, tmp_path, capsys):
    np.savez(tmp_path / "in.npz", x=np.zeros((5, 2)))
    assert run_cli(["predict", str(regression), "--input", str(tmp_path / "in.npz")]) == 2
    assert "one value per row" in capsys.readouterr().err


@pytest.mark.parametrize("x, message", [(np.zeros((0, 1)), "no rows"),
                                        ([0.5, 0.2], "one column per input"),
                                        (np.zeros((2, 1, 1)), "one column per input"),
                                        ([[np.nan]], "finite numbers"),
                                        ([["a"]], "inputs must be numbers")])
def test_python_predict_refuses_empty_and_misshapen_inputs(regression, x, message):
    with pytest.raises(ConfigError, match=message):
        headbayes.load_run(regression).predict(x)


def test_no_compile_cache_inside_a_received_run_directory(regression, tmp_path):
    """J01, B27: `cd RUN && headbayes report .` used RUN/outputs/jax_cache: compiled programs
    the sender put there ran, and a link named outputs took the cache's writes elsewhere."""
    import subprocess
    import sys

    run = shutil.copytree(regression, tmp_path / "recv" / "run")
    outside = tmp_path / "outside"
    outside.mkdir()
    (run / "outputs").symlink_to(outside)
    env = {k: v for k, v in os.environ.items()
           if k not in ("HEADBAYES_OUTPUT_DIR", "HEADBAYES_COMPILE_CACHE")}
    result = subprocess.run([sys.executable, "-m", "headbayes", "report", ".", "--no-plots"],
                            cwd=run, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert list(outside.iterdir()) == []


def test_a_data_file_that_is_a_device_or_fifo_is_refused_before_reading(tmp_path):
    os.mkfifo(tmp_path / "pipe.csv")
    for path in ("/dev/zero", str(tmp_path / "pipe.csv")):
        cfg = headbayes.compose(["data=csv", f"data.path={path}", "data.target=y",
                                 "data.inputs=[x]", *SMALL])
        with pytest.raises(ConfigError, match="is not a regular file"):
            sample(cfg, tmp_path / "run", lambda *a: None)


def test_a_file_of_nul_bytes_is_refused_without_quoting_it(tmp_path):
    """F3: a sparse file of NUL bytes was one cell, parsed and quoted whole (17 times its
    size in memory)."""
    nul = tmp_path / "nul.csv"
    with open(nul, "wb") as f:
        f.truncate(5_000_000)
    with pytest.raises(ConfigError, match="line 1 holds a cell of more than 1000 characters") \
            as refused:
        headbayes.compose(["data=csv", f"data.path={nul}", "data.target=y"])
    assert len(str(refused.value)) < 300


def test_a_table_is_parsed_only_when_its_cells_fit_in_memory(tmp_path, monkeypatch):
    from headbayes.datasets import files

    table = tmp_path / "t.csv"
    table.write_text("x,y\n" + "1,2\n" * 10_000)  # 40 kB, 20,002 cells
    cfg = ["data=csv", f"data.path={table}", "data.target=y"]
    monkeypatch.setattr(files, "available_memory", lambda: 4 * 2**20)
    assert headbayes.compose(cfg).data.path == str(table)
    monkeypatch.setattr(files, "available_memory", lambda: 2**20)  # 1.4 MB needed, 0.5 allowed
    files._kinds_of.cache_clear()
    with pytest.raises(ConfigError, match=r"reading .*t.csv \(20,00\d cells at most\) would "
                                          r"take about 0.0 GiB, more than half of the"):
        headbayes.compose(cfg)


def test_a_manifest_naming_a_part_twice_is_refused(regression, tmp_path, capsys):
    run = shutil.copytree(regression, tmp_path / "run")
    path = run / "chain" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["parts"].append(manifest["parts"][0])
    path.write_text(json.dumps(manifest))
    assert run_cli(["report", str(run), "--no-plots"]) == 4
    assert "names chain part" in capsys.readouterr().err


def test_a_lock_that_is_a_directory_is_a_run_directory_error(regression, tmp_path, capsys):
    run = shutil.copytree(regression, tmp_path / "run")
    (run / ".lock").mkdir()
    assert run_cli(["resume", str(run)]) == 4
    assert ".lock is not a file" in capsys.readouterr().err


def test_one_kept_draw_writes_r_hat_as_null(tmp_path):
    run = tmp_path / "run"
    with owned(run):
        sample(headbayes.compose(["sampler.warmup=10", "sampler.keep=1", "report.plots=false"]),
               run, lambda *a: None)
    assert run_cli(["report", str(run), "--no-plots"]) == 0

    def not_json(constant):
        raise AssertionError(f"metrics.json holds {constant}, which is not JSON")

    metrics = json.loads((run / "metrics.json").read_text(), parse_constant=not_json)
    assert "rhat_max" in metrics and metrics["rhat_max"] is None  # two draws per chain at least
    assert isinstance(metrics["exact_rel_l2"], float)


@pytest.mark.parametrize("change, message, code", [
    ({"eval_step": 1e-9}, "data.eval_step", 4),  # a grid of 2e9 points: out of range
    ({"n_train": 20_000_000_000}, "GiB of memory", 2),  # 2e10 rows: more than this machine has
])
def test_a_received_config_passes_the_checks_of_run_before_anything_is_built(
        regression, tmp_path, capsys, change, message, code):
    run = shutil.copytree(regression, tmp_path / "run")
    config = json.loads((run / "run_config.json").read_text())
    config["data"].update(change)
    (run / "run_config.json").write_text(json.dumps(config))
    rerecord(run)  # as whoever sent the directory could
    for command in (["report", str(run), "--no-plots"], ["resume", str(run)]):
        assert run_cli(command) == code
        err = capsys.readouterr().err
        assert "run_config.json: " in err and message in err


def test_every_file_that_changes_a_figure_is_recorded(regression):
    record = json.loads((regression / "checksums.json").read_text())
    assert set(record) == {"run_config.json", "data.json", "hyperparameters.json", "mask.json",
                           "params.npz", "frozen_end.npz"}


@pytest.mark.parametrize("name, change", [
    ("hyperparameters.json", lambda d: d.update(likelihood_sigma=0.5)),
    ("data.json", lambda d: d.update(x_scale=[0.0])),
    ("run_config.json", lambda d: d["sampler"].update(thin=3)),
])
def test_an_edited_file_is_refused_by_report_predict_and_resume(regression, tmp_path, capsys,
                                                                 name, change):
    run = shutil.copytree(regression, tmp_path / "run")
    content = json.loads((run / name).read_text())
    change(content)
    (run / name).write_text(json.dumps(content))
    (tmp_path / "in.csv").write_text("x\n0.5\n")
    for command in (["report", str(run), "--no-plots"],
                    ["predict", str(run), "--input", str(tmp_path / "in.csv")],
                    ["resume", str(run)]):
        assert run_cli(command) == 4, command
        assert f"{name} is not the file the run wrote" in capsys.readouterr().err


def _forge_json(run: Path, name: str, change) -> None:
    values = json.loads((run / name).read_text())
    change(values)
    (run / name).write_text(json.dumps(values))


@pytest.mark.parametrize("case, message", [
    ("nan_params", "leaf output_layer.bias holds values that are not finite"),
    ("long_int", "prior_sigma must be numbers > 0"),
    ("target_list", "model._target_ must be a string"),
    ("target_elsewhere", "likelihood._target_ is not a key headbayes saves"),
    ("model_string", "section model must be a mapping of keys"),  # round 6: a traceback
])
def test_forged_files_are_refused_without_a_traceback(regression, tmp_path, capsys, case,
                                                      message):
    """Round 5, with the record rewritten as a sender could: F03 NaN parameters gave NaN
    figures with exit 0; C26 a 4000-digit scale and A12 a list as `_target_`, tracebacks."""
    run = Path(shutil.copytree(regression, tmp_path / "run"))
    if case == "nan_params":
        params = dict(np.load(run / "params.npz"))
        params["output_layer.bias"] = np.full_like(params["output_layer.bias"], np.nan)
        np.savez(run / "params.npz", **params)
    elif case == "long_int":
        _forge_json(run, "hyperparameters.json",
                    lambda d: d.update(prior_sigma=int("9" * 4000)))
    elif case == "target_list":
        _forge_json(run, "run_config.json", lambda d: d.update(model={"_target_": ["a.b"]}))
    elif case == "model_string":
        _forge_json(run, "run_config.json", lambda d: d.update(model="evil.make"))
    else:  # A13: it said "expected a JSON object"
        _forge_json(run, "run_config.json", lambda d: d["likelihood"].update(_target_="os.x"))
    rerecord(run)
    assert run_cli(["report", str(run), "--no-plots"]) == 4
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_classifier_forged_into_a_gaussian_run_is_refused(classifier, tmp_path, capsys):
    """F23: a KeyError 'likelihood_sigma' traceback."""
    _, classifier_run = classifier
    run = Path(shutil.copytree(classifier_run, tmp_path / "run"))
    _forge_json(run, "run_config.json", lambda d: d["likelihood"].update(name="gaussian"))
    rerecord(run)
    assert run_cli(["report", str(run), "--no-plots"]) in (2, 4)
    assert "Traceback" not in capsys.readouterr().err


def test_edited_parameters_are_refused(regression, tmp_path, capsys):
    run = shutil.copytree(regression, tmp_path / "run")
    params = dict(np.load(run / "params.npz"))
    params["output_layer.bias"] = params["output_layer.bias"] + 1
    np.savez(run / "params.npz", **params)
    assert run_cli(["report", str(run), "--no-plots"]) == 4
    assert "params.npz is not the file the run wrote" in capsys.readouterr().err


BAD_MODELS = '''
import equinox as eqx
import jax
import jax.numpy as jnp


class Net(eqx.Module):
    output_layer: eqx.nn.Linear

    def __call__(self, x):
        return self.output_layer(x)


class Boom(eqx.Module):
    output_layer: eqx.nn.Linear

    def __call__(self, x):
        raise RuntimeError("my forward is broken")


class Casts(eqx.Module):
    output_layer: eqx.nn.Linear

    def __call__(self, x):
        return self.output_layer(x).astype(jnp.int32)


class RaisingStages(eqx.Module):
    body: eqx.nn.Linear
    output_layer: eqx.nn.Linear
    stages = ("body", "output_layer")

    def run_stages(self, h, start=0, stop=None):
        raise ValueError("stage boom")

    def __call__(self, x):
        return self.output_layer(jnp.tanh(self.body(x)))


def raisingstages(*, key, in_features, out_features):
    k1, k2 = jax.random.split(key)
    return RaisingStages(eqx.nn.Linear(in_features, 8, key=k1),
                         eqx.nn.Linear(8, out_features, key=k2))


class MisnamedStages(eqx.Module):
    output_layer: eqx.nn.Linear
    stages = ("nothere", "output_layer")

    def run_stages(self, h, start=0, stop=None):
        return self.output_layer(h)

    def __call__(self, x):
        return self.output_layer(x)


def misnamed(*, key, in_features, out_features):
    return MisnamedStages(eqx.nn.Linear(in_features, out_features, key=key))


def interrupted(*, key, in_features, out_features):
    raise KeyboardInterrupt


def exits(*, key, in_features, out_features):
    import sys
    sys.exit(0)


def hugeout(*, key, in_features, out_features):
    return Net(eqx.nn.Linear(in_features, 200, key=key))


def notmodule(*, key, in_features, out_features):
    return {"output_layer": jnp.zeros((in_features, out_features))}


def f16(*, key, in_features, out_features):
    return Net(eqx.nn.Linear(in_features, out_features, key=key, dtype=jnp.float16))


def intleaf(*, key, in_features, out_features):
    linear = eqx.nn.Linear(in_features, out_features, key=key)
    return Net(eqx.tree_at(lambda m: m.weight, linear, linear.weight.astype(jnp.int32)))


def boom(*, key, in_features, out_features):
    return Boom(eqx.nn.Linear(in_features, out_features, key=key))


def intout(*, key, in_features, out_features):
    return Casts(eqx.nn.Linear(in_features, out_features, key=key))


class NaNOut(eqx.Module):
    output_layer: eqx.nn.Linear

    def __call__(self, x):
        return jnp.log(-jnp.abs(self.output_layer(x)))


class SometimesInf(eqx.Module):
    output_layer: eqx.nn.Linear

    def __call__(self, x):
        return jnp.where(x > 0.9, jnp.inf, self.output_layer(x))


def sometimes_inf(*, key, in_features, out_features):
    return SometimesInf(eqx.nn.Linear(in_features, out_features, key=key))


def nanout(*, key, in_features, out_features):
    return NaNOut(eqx.nn.Linear(in_features, out_features, key=key))


def nanbias(*, key, in_features, out_features):
    linear = eqx.nn.Linear(in_features, out_features, key=key)
    return Net(eqx.tree_at(lambda m: m.bias, linear, jnp.full(out_features, jnp.nan)))
'''


@pytest.mark.parametrize("name, message", [
    ("hugeout", "maps one example of 1 input to shape (200,); the data and likelihood need (1,)"),
    ("notmodule", "returned a dict, not an equinox Module"),
    ("f16", "leaf output_layer.weight is float16: only float32 and float64"),
    ("intleaf", "leaf output_layer.weight is int32: only float32 and float64"),
    ("boom", "forward pass on one example failed: RuntimeError: my forward is broken"),
    ("intout", "int32 outputs; the likelihood needs float32 or float64"),
    ("syntax", "cannot import module 'broken_mods': SyntaxError"),
    ("raisingstages", "its run_stages failed (stages before and from 1): ValueError: stage boom"),
    ("exits", "model factory bad_models.exits failed: it called sys.exit(0)"),
    ("misnamed", "its stages name 'nothere', which is no leaf path's prefix"),
])
def test_an_own_model_that_cannot_fit_the_data_is_a_config_error(tmp_path, monkeypatch, name,
                                                                 message):
    (tmp_path / "bad_models.py").write_text(BAD_MODELS)
    (tmp_path / "broken_mods.py").write_text("def make(:\n")
    (tmp_path / "configs" / "model").mkdir(parents=True)
    target = "broken_mods.make" if name == "syntax" else f"bad_models.{name}"
    (tmp_path / "configs" / "model" / "own.yaml").write_text(f"_target_: {target}\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=re.escape(message)):
        headbayes.compose(["model=own"])


@pytest.mark.parametrize("overrides, error, message", [
    (["model=own"], ConfigError,
     "the model's factory gave non-finite values in leaf 'output_layer.bias', where sampling "
     "would start; check its initial values"),
    (["+experiment=sin_head_pretrained", "body.steps=20", "body.lr=1e30"], SamplingError,
     "training the body left non-finite values in leaf"),
])
def test_non_finite_starting_values_are_named_before_sampling(tmp_path, monkeypatch, overrides,
                                                              error, message):
    """F9: they ended in 'non-finite value at step 1 ... lower the step size'."""
    (tmp_path / "bad_models.py").write_text(BAD_MODELS)
    (tmp_path / "configs" / "model").mkdir(parents=True)
    (tmp_path / "configs" / "model" / "own.yaml").write_text("_target_: bad_models.nanbias\n")
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    cfg = headbayes.compose([*overrides, "sampler.warmup=10", "sampler.keep=5",
                             "report.plots=false"])
    with pytest.raises(error, match=re.escape(message)) as refused, owned(run):
        sample(cfg, run, lambda *a: None)
    assert "step size" not in str(refused.value)
    assert not (run / "chain" / "manifest.json").exists()


def test_a_model_whose_outputs_are_not_finite_at_report_points_gets_a_warning(
        tmp_path, monkeypatch, capsys):
    """B6 (round 5): rel_l2 inf and band NaN with exit 0, a verdict naming only R-hat, and a
    numpy warning on the terminal."""
    (tmp_path / "bad_models.py").write_text(BAD_MODELS)
    (tmp_path / "configs" / "model").mkdir(parents=True)
    (tmp_path / "configs" / "model" / "own.yaml").write_text(
        "_target_: bad_models.sometimes_inf\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "bad_models", raising=False)  # another test's folder
    run = tmp_path / "run"
    cfg = headbayes.compose(["model=own", *SMALL])
    with owned(run):
        sample(cfg, run, lambda *a: None)
    assert run_cli(["report", str(run), "--no-plots"]) == 0
    verdict = json.loads((run / "metrics.json").read_text())["verdict"]
    assert re.search(r"the model's outputs are not finite at \d+ eval points", verdict)
    assert "RuntimeWarning" not in capsys.readouterr().err


def test_learned_scales_outside_the_scale_range_stop_before_sampling(tmp_path):
    """B9 (round 5): a 4-row table under +experiment=tabular learned prior.sigma 4.5e-76,
    sampled, then refused its own run_config.json with exit 4 for good."""
    table = tmp_path / "four.csv"
    table.write_text("a,b,y\n0.1,0.5,0.3\n0.4,0.2,0.9\n0.8,0.9,0.1\n0.3,0.6,0.5\n")
    cfg = headbayes.compose(["+experiment=tabular", f"data.path={table}", "data.target=y",
                             "body.steps=20", "sampler.keep=10"])
    run = tmp_path / "run"
    with pytest.raises(SamplingError, match=r"learning the scales failed: found .*outside "
                                            r"\[1e-30, 1e\+30\] \(too few"), owned(run):
        sample(cfg, run, lambda *a: None)
    assert not (run / "chain" / "manifest.json").exists()


def test_a_forward_that_gives_nan_is_named_at_the_first_step(tmp_path, monkeypatch):
    (tmp_path / "bad_models.py").write_text(BAD_MODELS)
    (tmp_path / "configs" / "model").mkdir(parents=True)
    (tmp_path / "configs" / "model" / "own.yaml").write_text("_target_: bad_models.nanout\n")
    monkeypatch.chdir(tmp_path)
    cfg = headbayes.compose(["model=own", "sampler.warmup=10", "sampler.keep=5",
                             "report.plots=false"])
    with pytest.raises(SamplingError, match="non-finite value at step 0 .* At the first step "
                                            "the model's outputs or their gradients"), \
            owned(tmp_path / "run"):
        sample(cfg, tmp_path / "run", lambda *a: None)


def test_a_keyboard_interrupt_in_the_users_code_ends_with_130_and_one_line(tmp_path,
                                                                          monkeypatch, capsys):
    """B15 (round 5): a traceback, and the process died of SIGINT."""
    (tmp_path / "bad_models.py").write_text(BAD_MODELS)
    (tmp_path / "configs" / "model").mkdir(parents=True)
    (tmp_path / "configs" / "model" / "own.yaml").write_text("_target_: bad_models.interrupted\n")
    monkeypatch.chdir(tmp_path)
    assert run_cli(["inspect", "model=own"]) == 130
    err = capsys.readouterr().err
    assert "stopped by signal 2" in err and "Traceback" not in err


def test_python_predict_takes_a_number_and_a_dict_of_columns(regression):
    run = headbayes.load_run(regression)
    assert run.predict(0.5)["mean"].shape == (1,)
    assert run.predict({"x": [0.1, 0.2]})["mean"].shape == (2,)
    with pytest.raises(ConfigError, match="no column 'x'"):
        run.predict({"u": [0.1]})
    # P14 (round 5): other columns were ignored without a word, 2-D ones flattened into rows
    same = run.predict({"x": [0.1, 0.2], "y": [5.0, 6.0]})["mean"]  # the target: ignored
    np.testing.assert_array_equal(same, run.predict({"x": [0.1, 0.2]})["mean"])
    with pytest.raises(ConfigError, match="column 'u' is none of the run's inputs"):
        run.predict({"x": [0.1], "u": [0.1]})
    with pytest.raises(ConfigError, match=r"column 'x' must hold one value per row, got "
                                          r"shape \(2, 2\)"):
        run.predict({"x": [[0.1, 0.2], [0.3, 0.4]]})


def _replace_part(run, arrays_or_bytes):
    """Put new bytes in chain/part-00000.npz and its SHA-256 in the manifest (as whoever
    sent the directory could)."""
    import hashlib
    import io

    if isinstance(arrays_or_bytes, dict):
        buffer = io.BytesIO()
        np.savez(buffer, **arrays_or_bytes)
        arrays_or_bytes = buffer.getvalue()
    (run / "chain" / "part-00000.npz").write_bytes(arrays_or_bytes)
    manifest = json.loads((run / "chain" / "manifest.json").read_text())
    manifest["parts"][0]["sha256"] = hashlib.sha256(arrays_or_bytes).hexdigest()
    (run / "chain" / "manifest.json").write_text(json.dumps(manifest))
    return manifest["parts"][0]["draws"]


def test_a_chain_part_claiming_more_than_memory_is_refused_before_allocating(regression,
                                                                             tmp_path, capsys):
    import io
    import zipfile

    run = shutil.copytree(regression, tmp_path / "run")
    draws = json.loads((run / "chain" / "manifest.json").read_text())["parts"][0]["draws"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:  # the leaves of the run, for 10**9 chains
        for name, shape in (("output_layer.weight", (1, 16)), ("output_layer.bias", (1,))):
            header = io.BytesIO()
            np.lib.format.write_array_header_2_0(
                header, {"descr": "<f4", "fortran_order": False,
                         "shape": (10**9, draws, *shape)})
            z.writestr(f"{name}.npy", header.getvalue() + b"\0" * 64)
    _replace_part(run, archive.getvalue())
    assert run_cli(["report", str(run), "--no-plots"]) == 4
    assert "more than a quarter of the" in capsys.readouterr().err


@pytest.mark.parametrize("change, message", [
    ("drop", "it lacks the sampled leaf output_layer.bias"),
    ("junk", "array 'junk' is no sampled leaf of the run"),
    ("reshape", "leaf output_layer.bias has draws of shape (2,), the model's is (1,)"),
    ("nan_info", "step information grad_evals holds values that are no counts"),
    ("chains", "its arrays have different numbers of chains [2, 4]"),  # round 6: a traceback
])
def test_a_chain_part_must_hold_the_runs_leaves(regression, tmp_path, capsys, change, message):
    """F10: a part without a sampled leaf gave a full report; C20: an extra array of 1.5 MB
    was decompressed to 3 GB before it was refused; F13: NaN step counts, a traceback."""
    run = shutil.copytree(regression, tmp_path / "run")
    arrays = dict(np.load(run / "chain" / "part-00000.npz"))
    bias = arrays.pop("output_layer.bias")
    if change == "junk":
        arrays.update({"output_layer.bias": bias, "junk": np.zeros((1, bias.shape[1], 3))})
    elif change == "reshape":
        arrays["output_layer.bias"] = np.concatenate([bias, bias], axis=2)
    elif change == "chains":
        arrays["output_layer.bias"] = np.concatenate([bias, bias], axis=0)
    elif change == "nan_info":
        arrays["output_layer.bias"] = bias
        arrays["info/grad_evals"] = np.full_like(arrays["info/grad_evals"], np.nan, float)
    _replace_part(run, arrays)
    for command in (["report", str(run), "--no-plots"], ["export", str(run)]):
        assert run_cli(command) == 4
        assert message in capsys.readouterr().err


@pytest.mark.parametrize("trick", ["bomb", "encrypted", "members"])
def test_a_parameter_file_is_checked_before_its_arrays_are_read(regression, tmp_path, capsys,
                                                                trick):
    """Round 4: a 7 MB params.npz of 7 GiB of zeros was decompressed (killed at 6 GB); an
    encrypted member and 200,000 tiny members ended in tracebacks or 1.2 GB."""
    import io
    import zipfile

    run = Path(shutil.copytree(regression, tmp_path / "run"))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        if trick == "bomb":  # the header claims the size; the values need not be there
            header = io.BytesIO()
            np.lib.format.write_array_header_2_0(
                header, {"descr": "<f4", "fortran_order": False, "shape": (2**40,)})
            z.writestr("output_layer.weight.npy", header.getvalue())
        elif trick == "members":
            for i in range(10_001):
                z.writestr(f"a{i}.npy", b"")
        else:
            z.writestr("output_layer.weight.npy", b"\x93NUMPY")
    data = bytearray(archive.getvalue())
    if trick == "encrypted":  # the general-purpose flag's bit 0, in the central directory
        at = data.rfind(b"PK\x01\x02")
        data[at + 8] |= 1
    (run / "params.npz").write_bytes(bytes(data))
    rerecord(run)
    assert run_cli(["report", str(run), "--no-plots"]) == 4
    err = capsys.readouterr().err
    assert {"bomb": "more than a quarter of the", "encrypted": "encrypted",
            "members": "10001 arrays, more than 10000"}[trick] in err, err


def test_a_chain_part_with_other_draws_than_the_manifest_is_refused(regression, tmp_path,
                                                                    capsys):
    run = shutil.copytree(regression, tmp_path / "run")
    part = dict(np.load(run / "chain" / "part-00000.npz"))
    _replace_part(run, {k: np.concatenate([v, v], axis=1) for k, v in part.items()})
    assert run_cli(["report", str(run), "--no-plots"]) == 4
    assert "the manifest gives it" in capsys.readouterr().err


def test_a_stopped_predict_does_not_suggest_resuming(monkeypatch, capsys):
    import signal

    import headbayes.app.cli as cli_module
    from headbayes.core.errors import SignalStop

    def stopped(args):
        raise SignalStop(signal.SIGTERM)

    monkeypatch.setitem(cli_module.COMMANDS, "predict", stopped)
    assert run_cli(["predict", "somewhere", "--input", "x.csv"]) == 143
    err = capsys.readouterr().err
    assert "stopped by signal 15" in err and "resume" not in err


def test_a_uci_target_that_is_also_an_input_is_refused(tmp_path):
    root = shutil.copytree(Path(headbayes.__file__).parents[2] / "data" / "uci" / "yacht",
                           tmp_path / "yacht")
    features = (root / "index_features.txt").read_text().split()
    (root / "index_target.txt").write_text(features[2] + "\n")
    with pytest.raises(ConfigError, match="is both the target"):
        headbayes.compose(["+experiment=uci", f"data.root={root}"])


def test_uci_folders_name_what_is_wrong_in_one_line(tmp_path, recwarn):
    """u07: an empty test index printed numpy's UserWarning first; u19: a file as data.root
    was a folder 'not found'."""
    from headbayes.datasets import make_dataset

    root = shutil.copytree(Path(headbayes.__file__).parents[2] / "data" / "uci" / "yacht",
                           tmp_path / "yacht")
    (root / "index_test_0.txt").write_text("")
    cfg = headbayes.compose(["+experiment=uci", f"data.root={root}"])
    with pytest.raises(ConfigError, match="must hold integers in"):
        make_dataset(cfg.data)
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]
    with pytest.raises(ConfigError, match="is a file; give the folder"):
        headbayes.compose(["+experiment=uci", f"data.root={root / 'data.txt'}"])


@pytest.mark.parametrize("args, message", [
    (["samplr=nuts"], "unknown config group 'samplr'; did you mean 'sampler'? (sampler=NAME"),
    (["+experiment=sin_head", "seed=ä"], "cannot parse the override 'seed=ä'"),
    (["data=csv", "data.inputs=[größe,x]"], "quote it: data.inputs=['größe','x']"),  # d05
    (["+experiment=sin_head", "hydra.run.dir={file}"], "hydra.run.dir: {file} is a file"),
    (["+experiment=sin_head", "hydra.run.dir={file}/sub"], "cannot create {file}/sub: {file} is"),
    (["+experiment=sin_head", "hydra.run.dir="], "hydra.run.dir is empty"),
    (["+experiment=sin_head", "hydra.run.dir={long}"], "a name too long for the file system"),
    (["+experiment=sin_head", "hydra.run.dir={link}"], "is a symbolic link; give the folder"),
    (["+experiment=sin_head", "hydra.run.dir={full}"], "holds other files and no headbayes run"),
    (["+experiment=sin_head", "sampler.step_size=1e-3,1e-4"],
     "'sampler.step_size=1e-3,1e-4' is a sweep: add -m"),
    (["-m", "+experiment=sin_head", "sampler.step_size=interval(1e-4,1e-3)"],
     "'sampler.step_size=interval(1e-4,1e-3)': the basic sweeper takes lists"),
])
def test_command_lines_refused_with_one_clear_line(refused_run, tmp_path, args, message):
    """Round 4 (F11, F12) added run folders below a file, empty, too long, a link and one
    holding someone's files (a traceback, or files written into the working directory)."""
    (tmp_path / "a_file").write_text("")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "metrics.json").write_text("{}")  # the user's, not a run's
    (tmp_path / "link").symlink_to(tmp_path / "full")
    names = {"file": tmp_path / "a_file", "long": tmp_path / ("x" * 300),
             "link": tmp_path / "link", "full": tmp_path / "full"}
    result = refused_run(*[a.format(**names) for a in args])
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message.format(**names) in result.stderr


def test_a_run_folder_that_cannot_be_written_is_refused_before_hydra(refused_run, tmp_path,
                                                                    monkeypatch):
    """w05: a run directory on a read-only file system ended in Hydra's OSError traceback.
    (A read-only mount needs privileges: `os.access` answers for it here.)"""
    import headbayes.app.cli as cli

    read_only = tmp_path / "mnt"
    read_only.mkdir()
    real_access = os.access
    monkeypatch.setattr(cli.os, "access", lambda path, mode: (
        False if Path(path) == read_only else real_access(path, mode)))
    result = refused_run("+experiment=sin_head", f"hydra.run.dir={read_only / 'sub' / 'run'}")
    assert result.returncode == 4
    assert f"cannot write {read_only / 'sub' / 'run'}: {read_only} is not writable" in (
        result.stderr)


def test_an_output_folder_that_is_a_file_is_refused(refused_run, tmp_path):
    (tmp_path / "outputs").write_text("")  # refused_run's HEADBAYES_OUTPUT_DIR
    result = refused_run("+experiment=sin_head")
    assert result.returncode == 2
    assert f"HEADBAYES_OUTPUT_DIR: {tmp_path / 'outputs'} is a file" in result.stderr


def test_inspect_refuses_a_sweep_flag(headbayes):
    result = headbayes("inspect", "-m", "sampler.step_size=1,2")
    assert result.returncode == 2
    assert "inspect shows one config: drop -m" in result.stderr


def test_resume_with_a_sweep_says_so(regression, capsys):
    assert run_cli(["resume", str(regression), "seed=0,1"]) == 2
    err = capsys.readouterr().err
    assert "'seed=0,1' is a sweep" in err and "ChoiceSweep" not in err


def test_random_bytes_are_not_called_pickled_data(regression, tmp_path, capsys):
    run = shutil.copytree(regression, tmp_path / "run")
    (run / "params.npz").write_bytes(bytes(range(256)) * 4)
    rerecord(run)
    assert run_cli(["report", str(run), "--no-plots"]) == 4
    err = capsys.readouterr().err
    assert "not an npz archive" in err and "pickle" not in err
    (tmp_path / "in.npz").write_bytes(bytes(range(256)) * 4)
    assert run_cli(["predict", str(regression), "--input", str(tmp_path / "in.npz")]) == 2
    err = capsys.readouterr().err
    assert "not an npz archive" in err and "pickle" not in err


def test_a_data_file_larger_than_memory_is_refused_before_reading(tmp_path):
    big = tmp_path / "big.csv"
    with open(big, "wb") as f:
        f.truncate(2**42)  # 4 TiB, sparse: nothing is written
    with pytest.raises(ConfigError, match="too large to read"):
        headbayes.compose(["data=csv", f"data.path={big}", "data.target=y", *SMALL])


@pytest.mark.parametrize("next_step", [25, 100, 20])
def test_a_checkpoint_step_that_disagrees_with_the_kept_draws_is_refused(regression, tmp_path,
                                                                        capsys, next_step):
    """r43: 10 draws of thin 2 after 20 warmup steps end at step 40; a checkpoint that says
    otherwise would append draws to the chain (or call it finished)."""
    run = Path(shutil.copytree(regression, tmp_path / "run"))
    path = run / "chain" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["checkpoint"]["next_step"] = next_step
    path.write_text(json.dumps(manifest))
    for command in (["resume", str(run)], ["report", str(run)]):
        assert run_cli(command) == 4
        assert f"checkpoint at step {next_step} does not follow the 10 draws kept" in (
            capsys.readouterr().err)


@pytest.mark.parametrize("name,content", [
    ("hyperparameters.json", None), ("chain/manifest.json", None), ("params.npz", None),
    ("run_config.json", "[" * 100_000), ("data.json", '{"x": ' + "[" * 100_000 + "]}")])
def test_a_huge_or_deeply_nested_file_is_refused_without_reading_it(regression, tmp_path,
                                                                   capsys, name, content):
    """A sparse 1 TiB file (a few bytes on disk) was read whole (MemoryError traceback), and
    JSON nested 100,000 deep overflowed the parser's recursion (RecursionError)."""
    run = Path(shutil.copytree(regression, tmp_path / "run"))
    if content is None:
        os.truncate(run / name, 2**40)
    else:
        (run / name).write_text(content)
    rerecord(run) if content is not None else None
    assert run_cli(["report", str(run), "--no-plots"]) == 4
    err = capsys.readouterr().err
    assert name in err and ("too large" in err or "nested too deeply" in err), err


def test_a_saved_config_never_interpolates(regression, tmp_path, capsys, monkeypatch):
    """`${oc.env:NAME}` in a received config read this process's environment."""
    monkeypatch.setenv("HEADBAYES_TEST_SECRET", "sin")
    run = Path(shutil.copytree(regression, tmp_path / "run"))
    config = json.loads((run / "run_config.json").read_text())
    config["data"]["name"] = "${oc.env:HEADBAYES_TEST_SECRET}"
    (run / "run_config.json").write_text(json.dumps(config))
    rerecord(run)
    assert run_cli(["report", str(run), "--no-plots"]) == 4
    assert "data.name holds an interpolation" in capsys.readouterr().err


def test_yaml_aliases_are_refused(regression, tmp_path, capsys):
    """Nine aliases of nine aliases ... (a 'billion laughs') become copies once merged."""
    run = Path(shutil.copytree(regression, tmp_path / "run"))
    (run / "run_config.json").unlink()  # a run older than run_config.json: .hydra/config.yaml
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    (run / ".hydra").mkdir(exist_ok=True)
    (run / ".hydra" / "config.yaml").write_text("\n".join(lines) + "\n")
    rerecord(run)
    assert run_cli(["report", str(run), "--no-plots"]) == 4
    assert "anchors and aliases are not allowed" in capsys.readouterr().err


@pytest.mark.parametrize("key,value,message", [
    ("x_scale", [0.0], "x_scale must hold 1 positive numbers of magnitude at most 1e+100"),
    ("y_scale", [float("nan")], "y_scale must hold 1 positive numbers of magnitude"),
    ("x_shift", [1.0, 2.0], "x_shift must hold 1 numbers of magnitude at most 1e+100"),
    ("y_scale", [1e300], "y_scale must hold 1 positive numbers"),
    ("y_shift", [1e308], "y_shift must hold 1 numbers"),
    ("y_shift", [int("9" * 4000)], "y_shift must hold 1 numbers"),
    ("inputs", "x", "inputs must be a list of column names")])
def test_standardisation_constants_are_checked(regression, tmp_path, capsys, key, value,
                                               message):
    """p30, p31: data.json rewritten with its checksum gave inf or NaN predictions, exit 0;
    F02: so did y_scale 1e300 and y_shift 1e308."""
    run = Path(shutil.copytree(regression, tmp_path / "run"))
    description = json.loads((run / "data.json").read_text())
    description[key] = value
    (run / "data.json").write_text(json.dumps(description))
    rerecord(run)
    (tmp_path / "new.csv").write_text("x\n0.5\n")
    assert run_cli(["predict", str(run), "--input", str(tmp_path / "new.csv")]) == 4
    assert message in capsys.readouterr().err


def test_inputs_that_overflow_the_models_units_are_refused(regression, tmp_path, capsys):
    """F02: x_scale 1e-300 was accepted, and a numpy overflow warning leaked."""
    run = Path(shutil.copytree(regression, tmp_path / "run"))
    description = json.loads((run / "data.json").read_text())
    description["x_scale"] = [1e-40]
    (run / "data.json").write_text(json.dumps(description))
    rerecord(run)
    (tmp_path / "new.csv").write_text("x\n0.5\n")
    assert run_cli(["predict", str(run), "--input", str(tmp_path / "new.csv")]) == 2
    err = capsys.readouterr().err
    assert "overflow float32" in err and "RuntimeWarning" not in err


def test_a_prediction_that_is_not_finite_is_refused(regression, tmp_path, capsys,
                                                   monkeypatch):
    """B5 (round 5): inputs where a model's outputs overflow (3e38 into a ReLU network) gave a
    table of NaN with exit 0."""
    from headbayes.report import predict

    draws = predict.function_draws

    def overflowing(cfg, params, chain, x):
        f = np.array(draws(cfg, params, chain, x))
        f[:, :, x[:, 0] > 1e3] = np.inf
        return f

    monkeypatch.setattr(predict, "function_draws", overflowing)
    with pytest.raises(ConfigError, match="the predictive is not finite at 1 of the 3 input "
                                          "rows \\(the first: row 2\\)"):
        headbayes.load_run(regression).predict([[0.5], [3e30], [0.2]])
    (tmp_path / "edge.csv").write_text("x\n0.5\n3e30\n")
    assert run_cli(["predict", str(regression), "--input", str(tmp_path / "edge.csv")]) == 2
    assert "RuntimeWarning" not in capsys.readouterr().err


@pytest.mark.parametrize("classes, message", [
    (["0", "0"], "classes names a class twice or an empty one"),
    (["a", "b", "c", "d"], "data.json names 4 classes; the model predicts 3"),
    (["a"], "data.json names 1 classes; the model predicts 3"),
    (["", "b", "c"], "classes names a class twice or an empty one"),  # round 6 (N29)
])
def test_class_names_must_fit_the_model(classifier, tmp_path, capsys, classes, message):
    """C09, F18: another number of class names gave an IndexError traceback; a name twice
    silently dropped a probability column."""
    root, classifier_run = classifier
    run = Path(shutil.copytree(classifier_run, tmp_path / "run"))
    description = json.loads((run / "data.json").read_text())
    description["classes"] = classes
    (run / "data.json").write_text(json.dumps(description))
    rerecord(run)
    assert run_cli(["predict", str(run), "--input", str(root / "new.csv")]) == 4
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("columns,message", [
    ({"x": np.linspace(0, 1, 40).astype(np.complex64)}, "columns ['x'] of"),
    ({"x": np.array(["a"] * 40)}, "are not real numbers"),
    ({"y": 1e300 * np.linspace(-1, 1, 40)}, "column y of"),
    ({"y": np.full(40, 3.0)}, "the target y of"),
])
def test_data_no_model_could_learn_from_is_refused(tmp_path, columns, message):
    """A complex npz column ended in KeyError; targets near 1e300 gave inf metrics with exit
    0; a constant target with learned scales ended in 'try a smaller step size'."""
    from headbayes.datasets import make_dataset

    x = np.linspace(0, 1, 40)
    np.savez(tmp_path / "data.npz", **{"x": x, "y": np.sin(x), **columns})
    cfg = headbayes.compose(["data=npz", f"data.path={tmp_path / 'data.npz'}",
                             "data.target=y", "data.inputs=[x]"])
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_dataset(cfg.data)


def test_a_recorded_file_the_record_does_not_name_is_refused(regression, tmp_path, capsys):
    run = Path(shutil.copytree(regression, tmp_path / "run"))
    record = json.loads((run / "checksums.json").read_text())
    del record["hyperparameters.json"]
    (run / "checksums.json").write_text(json.dumps(record))
    assert run_cli(["report", str(run), "--no-plots"]) == 4
    assert "hyperparameters.json is not named in checksums.json" in capsys.readouterr().err


def test_a_process_stopped_while_rewriting_a_recorded_file_leaves_it_readable(regression,
                                                                            tmp_path):
    """The record names the old and the new SHA-256 while a file is rewritten: whichever one
    a stopped process left in place is accepted, and nothing else."""
    import hashlib

    from headbayes.core.rundir import RunFiles

    run = Path(shutil.copytree(regression, tmp_path / "run"))
    path = run / "hyperparameters.json"
    old = path.read_bytes()
    new = old.replace(b"{", b'{"unused": 1, ', 1)
    record = json.loads((run / "checksums.json").read_text())
    record["hyperparameters.json"] = [hashlib.sha256(b).hexdigest() for b in (old, new)]
    (run / "checksums.json").write_text(json.dumps(record))
    files = RunFiles(run)
    for content in (old, new):
        path.write_bytes(content)
        assert files.read_bytes("hyperparameters.json") == content
    path.write_bytes(old + b" ")
    with pytest.raises(Exception, match="is not the file the run wrote"):
        files.read_bytes("hyperparameters.json")


@pytest.mark.parametrize("name,change,message", [
    ("params_initial.npz", lambda a: a[..., None], "params_initial.npz: leaf"),
    ("frozen_end.npz", lambda a: a.astype(np.int8), "frozen_end.npz: leaf"),
    ("params.npz", None, "params.npz does not hold the model's leaves (missing: "),
])
def test_parameter_files_must_hold_the_models_leaves(regression, tmp_path, capsys, name, change,
                                                     message):
    """Found by the fuzz test: a recorded params_initial.npz of other shapes ended in a
    broadcasting ValueError."""
    from headbayes.core.rundir import RunFiles

    run = Path(shutil.copytree(regression, tmp_path / "run"))
    if name == "params_initial.npz":
        RunFiles(run).write_bytes(name, (run / "params.npz").read_bytes())
    with np.load(run / name) as z:
        arrays = dict(z)
    first = sorted(arrays)[0]
    if change is None:
        del arrays[first]
    else:
        arrays[first] = change(arrays[first])
    np.savez(run / name, **arrays)
    rerecord(run)
    assert run_cli(["report", str(run), "--no-plots"]) == 4
    assert message in capsys.readouterr().err


def test_a_recorded_file_that_is_a_folder_is_refused(regression, tmp_path, capsys):
    """Found by the fuzz test: params.npz as a folder ended in IsADirectoryError."""
    run = Path(shutil.copytree(regression, tmp_path / "run"))
    (run / "params.npz").unlink()
    (run / "params.npz").mkdir()
    (tmp_path / "new.csv").write_text("x\n0.5\n")
    assert run_cli(["predict", str(run), "--input", str(tmp_path / "new.csv")]) == 4
    assert "params.npz: not a regular file" in capsys.readouterr().err


@pytest.mark.parametrize("given,message", [
    ("in.csv", "--output in.csv is the --input file"),
    ("text.npz", "column x holds <U1, not real numbers"),
    ("complex.npz", "column x holds complex64, not real numbers"),
    ("folder.csv", "is not a regular file"),
    ("out.txt", "--output: out.txt must end in .csv or .npz"),
])
def test_predict_names_what_is_wrong_with_its_files(regression, tmp_path, monkeypatch, capsys,
                                                    given, message):
    """p15, p16d: a text or complex column was 'missing'; p17: a folder was 'not found';
    p19: out.txt silently got csv."""
    monkeypatch.chdir(tmp_path)
    np.savez("text.npz", x=np.array(["a", "b"]))
    np.savez("complex.npz", x=np.array([1 + 1j, 2], np.complex64))
    Path("folder.csv").mkdir()
    Path("in.csv").write_text("x\n0.5\n")
    args = (["--output", given, "--input", "in.csv"] if given in ("out.txt", "in.csv")
            else ["--input", given])
    assert run_cli(["predict", str(regression), *args]) == 2
    assert message in capsys.readouterr().err
    assert not Path("out.txt").exists()


def test_the_python_api_names_an_unfinished_run_and_a_file(regression, tmp_path):
    """a03: 'missing file metrics.json' for a run killed before its report; a17: a file given
    as a run directory 'does not exist'."""
    run = Path(shutil.copytree(regression, tmp_path / "run"))
    for name in ("metrics.json", "status.json"):
        (run / name).unlink(missing_ok=True)
    with pytest.raises(ConfigError, match="no finished run .* `headbayes resume "):
        headbayes.load_run(run).metrics
    (tmp_path / "file.csv").write_text("x\n")
    with pytest.raises(ConfigError, match="is a file, not a run directory"):
        headbayes.load_run(tmp_path / "file.csv")


def test_the_report_memory_is_checked_once_the_data_is_known(tmp_path):
    """cl04: 1000 classes x 3000 rows x 200 draws took over 8 GB, unchecked; sec22: a
    received config with 3e7 training rows used 13 GB for the exact reference."""
    from headbayes.config.budget import check_report_memory
    from headbayes.datasets import make_dataset

    cfg = headbayes.compose(["+experiment=sin_head", "sampler.keep=2000"])
    data = make_dataset(cfg.data)
    sampled = ["output_layer.weight", "output_layer.bias"]
    points = len(data.x_eval)
    draws_bytes = 4 * 2000 * points
    check_report_memory(cfg, data, sampled, available=draws_bytes + 24 * 32 * 17 + 1)
    with pytest.raises(ConfigError, match=r"the largest part, .* is the report's function "
                                          r"draws: keep fewer draws"):
        check_report_memory(cfg, data, sampled, available=draws_bytes - 1)
    many = data._replace(x_train=np.zeros((10**6, 1)), y_train=np.zeros((10**6, 1)))
    with pytest.raises(ConfigError, match="is the exact reference: use fewer training rows"):
        check_report_memory(cfg, many, sampled, available=24 * 10**6 * 17)


@pytest.mark.parametrize("name,change,command,message", [
    ("frozen_end.npz", "remove", "report", "missing file"),
    ("data.json", "link", "predict", "a symbolic link inside a run directory"),
    ("checksums.json", "folder", "report", "not a regular file"),
    ("status.json", "fifo", "predict", "not a regular file"),
])
def test_a_recorded_file_removed_or_replaced_is_not_taken_as_absent(regression, tmp_path,
                                                                    capsys, name, change,
                                                                    command, message):
    """Round 4: frozen_end.npz removed gave unmasked_var_max null, a linked data.json was
    rebuilt from the config, a checksums.json folder turned the checks off, a FIFO status.json
    was 'missing'."""
    run = Path(shutil.copytree(regression, tmp_path / "run"))
    replace_with(run / name, change, tmp_path / "elsewhere.json")
    (tmp_path / "new.csv").write_text("x\n0.5\n")
    args = {"report": ["report", str(run), "--no-plots"],
            "predict": ["predict", str(run), "--input", str(tmp_path / "new.csv")]}[command]
    assert run_cli(args) == 4
    assert message in capsys.readouterr().err


@pytest.mark.slow  # about 4-6 s: make test-all
def test_a_learned_run_without_its_scales_and_a_huge_integer_are_run_directory_errors(
        tmp_path, capsys):
    """Round 4: a uci run whose hyperparameters.json was gone (with the record rewritten)
    ended in "could not convert string to float: 'evidence'"; an integer of 5000 digits in
    the manifest in Python's ValueError."""
    root = shutil.copytree(Path(headbayes.__file__).parents[2] / "data" / "uci" / "yacht",
                           tmp_path / "yacht")
    run = finished_run(tmp_path / "run", ["+experiment=uci", f"data.root={root}",
                                          "body.steps=50"])
    scales = (run / "hyperparameters.json").read_bytes()
    (run / "hyperparameters.json").unlink()
    rerecord(run)
    assert run_cli(["report", str(run), "--no-plots"]) == 4
    assert "missing file" in capsys.readouterr().err
    (run / "hyperparameters.json").write_bytes(scales)
    rerecord(run)
    manifest = run / "chain" / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"draws": 10', '"draws": 1' + "0" * 5000))
    assert run_cli(["report", str(run), "--no-plots"]) == 4
    assert "corrupt file" in capsys.readouterr().err


@pytest.mark.slow  # 4 s: make test-all
def test_a_uci_run_reads_its_own_copy_of_the_folder(tmp_path, capsys):
    """Round 4: a received config's data.root was read in place: a folder outside the run (or
    one edited since) gave other figures with exit 0, and a link in it leaked a file's first
    word. A uci run now copies its split's files into inputs/root/ and reads only them."""
    root = shutil.copytree(Path(headbayes.__file__).parents[2] / "data" / "uci" / "yacht",
                           tmp_path / "yacht")
    run = finished_run(tmp_path / "run", ["+experiment=uci", f"data.root={root}",
                                          "body.steps=50"])
    assert sorted(p.name for p in (run / "inputs" / "root").iterdir()) == [
        "data.txt", "index_features.txt", "index_target.txt", "index_test_0.txt",
        "index_train_0.txt"]
    shutil.rmtree(root)  # the user's folder is gone: the run does not need it
    assert run_cli(["report", str(run), "--no-plots"]) == 0
    capsys.readouterr()
    copy = run / "inputs" / "root" / "data.txt"
    copy.write_text(copy.read_text().replace("0", "1", 1))
    assert run_cli(["report", str(run), "--no-plots"]) == 4
    assert "has changed since the run" in capsys.readouterr().err
    description = json.loads((run / "data.json").read_text())
    del description["files"]  # a sender's config naming a folder the run holds no copy of
    (run / "data.json").write_text(json.dumps(description))
    rerecord(run)
    assert run_cli(["report", str(run), "--no-plots"]) == 4
    assert "refusing to read a file outside the run directory" in capsys.readouterr().err


def test_predict_checks_the_draws_against_the_model(regression, tmp_path, capsys):
    """Round 4 (n21): draws of another shape than the model's leaf reached JAX in predict
    (a TypeError traceback); report checked them, predict did not."""
    run = Path(shutil.copytree(regression, tmp_path / "run"))
    with np.load(run / "chain" / "part-00000.npz") as z:
        arrays = dict(z)
    weight = arrays["output_layer.weight"]
    arrays["output_layer.weight"] = np.zeros(weight.shape[:2] + (2, weight.shape[-1]),
                                             weight.dtype)
    _replace_part(run, arrays)
    (tmp_path / "new.csv").write_text("x\n0.5\n")
    assert run_cli(["predict", str(run), "--input", str(tmp_path / "new.csv")]) == 4
    assert "leaf output_layer.weight has draws of shape (2, 16), the model's is (1, 16)" in \
        capsys.readouterr().err


def test_an_error_quoting_a_huge_value_is_cut(capsys):
    """Round 4 (j26, j36): a 5 MB sampler name was printed whole as the one-line error."""
    from headbayes.app import console

    console.error("x" * 10**6)
    err = capsys.readouterr().err
    assert len(err) < 2100 and err.rstrip().endswith("(998000 more characters)")


def test_summarize_and_the_api_read_only_the_figures_a_run_wrote(tmp_path, capsys):
    """Round 4: an edited metrics.json reached summarize and `load_run(...).metrics`; odd
    meta.json counts and metric lists ended in TypeError; an override starting with = went
    into summary.csv as a spreadsheet formula."""
    sweep = tmp_path / "sweep"
    for job in ("0", "1"):
        run = finished_run(sweep / job, [f"seed={job}"])
        assert run_cli(["report", str(run), "--no-plots"]) == 0
        (run / ".hydra").mkdir(exist_ok=True)
        (run / ".hydra" / "overrides.yaml").write_text(
            f"- seed={job}\n- note==HYPERLINK(x)\n- job=../../etc\n")
    capsys.readouterr()
    metrics = sweep / "1" / "metrics.json"
    metrics.write_text(metrics.read_text().replace('"rel_l2": ', '"rel_l2": [1], "x": ', 1))
    with pytest.raises(Exception, match="is not the file the run wrote"):
        headbayes.load_run(sweep / "1").metrics
    rerecord(sweep / "1")  # as its sender would
    with pytest.raises(Exception, match="rel_l2 is not a figure headbayes writes"):
        headbayes.load_run(sweep / "1").metrics
    meta = json.loads((sweep / "0" / "meta.json").read_text())
    meta["counts"] = {"grad_evals_sampling": "many"}
    (sweep / "0" / "meta.json").write_text(json.dumps(meta))
    assert run_cli(["summarize", str(sweep)]) == 4
    with open(sweep / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["ok", "damaged (exit 4)"]
    assert rows[0]["grad_evals"] == "" and rows[0]["note"] == "'=HYPERLINK(x)"
    assert [r["job"] for r in rows] == ["0", "1"]  # a job's overrides cannot rename it


@pytest.mark.parametrize("change", ["extra", "reshaped"])
def test_a_checkpoint_that_is_not_the_loop_state_is_refused(regression, tmp_path, capsys,
                                                            change):
    """Round 4 (r05): a checkpoint with an extra array ended in KeyError '4' on resume."""
    import hashlib

    run = Path(shutil.copytree(regression, tmp_path / "run"))
    path = run / "chain" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["checkpoint"]["next_step"], manifest["parts"] = 20, []  # stopped after warmup
    state = run / manifest["checkpoint"]["state"]
    with np.load(state) as z:
        arrays = dict(z)
    if change == "extra":
        arrays["extra"] = np.zeros(1)
    else:
        arrays["0"] = arrays["0"][..., None]
    np.savez(state, **arrays)
    manifest["checkpoint"]["sha256"] = hashlib.sha256(state.read_bytes()).hexdigest()
    path.write_text(json.dumps(manifest))
    assert run_cli(["resume", str(run)]) == 4
    assert {"extra": "are not named 0, 1", "reshaped": "does not match the config"}[change] in (
        capsys.readouterr().err)


def test_export_never_replaces_an_output_that_is_not_a_regular_file(regression, tmp_path,
                                                                    capsys):
    """Round 4 (F1): export --output replaced a device node or a FIFO with a regular file,
    as predict did in round 3; x.json got netCDF without a word."""
    fifo = tmp_path / "pipe.nc"
    os.mkfifo(fifo)
    assert run_cli(["export", str(regression), "--output", str(fifo)]) == 2
    assert "is not a regular file" in capsys.readouterr().err and fifo.is_fifo()
    assert run_cli(["export", str(regression), "--output", str(tmp_path / "x.json")]) == 2
    assert "must end in .nc" in capsys.readouterr().err


def test_python_predict_takes_frames_by_column_name_and_refuses_what_float32_cannot_hold(
        regression):
    """Round 4 (F6): a DataFrame's columns were taken by position (its names ignored), a
    complex input lost its imaginary part, 1e308 gave NaN rows without an error."""
    import pandas as pd

    run = headbayes.load_run(regression)
    by_name = run.predict(pd.DataFrame({"x": [0.1, 0.2]}))["mean"]
    np.testing.assert_array_equal(by_name, run.predict({"x": [0.1, 0.2]})["mean"])
    with pytest.raises(ConfigError, match="no column 'x'"):
        run.predict(pd.DataFrame({"a": [0.1]}))
    with pytest.raises(ConfigError, match="complex number"):
        run.predict([[0.1 + 5j]])
    with pytest.raises(ConfigError, match="within float32's range"):
        run.predict([[1e308]])


def test_an_input_whose_spread_underflows_is_refused(tmp_path):
    """Round 4 (F7): x times 1e-200 was standardised as a constant column (coverage 0, exit
    0); times 1e-30 it is standardised as usual."""
    from headbayes.datasets import make_dataset

    x = np.linspace(0, 1, 40)
    for scale, refused in ((1e-30, False), (1e-200, True)):
        np.savez(tmp_path / "data.npz", x=x * scale, y=np.sin(6 * x))
        cfg = headbayes.compose(["data=npz", f"data.path={tmp_path / 'data.npz'}",
                                 "data.target=y", "data.inputs=[x]"])
        if refused:
            with pytest.raises(ConfigError, match="column x varies too little"):
                make_dataset(cfg.data)
        else:
            assert np.ptp(make_dataset(cfg.data).x_train) > 1


def test_export_and_predict_wait_for_a_run_still_being_written(regression, tmp_path, capsys):
    """Round 4 (F14): export wrote a partial chain's netCDF into a run another process was
    writing; predict suggested `resume`, which that process refuses."""
    import subprocess

    run = Path(shutil.copytree(regression, tmp_path / "run"))
    holder = subprocess.Popen(["sleep", "60"])
    try:
        (run / ".lock").write_text(str(holder.pid))
        (tmp_path / "new.csv").write_text("x\n0.5\n")
        for command in (["export", str(run)],
                        ["predict", str(run), "--input", str(tmp_path / "new.csv")]):
            assert run_cli(command) == 2
            assert f"is being written by process {holder.pid}" in capsys.readouterr().err
        assert not (run / "inference_data.nc").exists()
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("content", ["-1", "0", "abc", str(2**80)])
def test_a_lock_naming_no_process_is_stale(regression, tmp_path, capsys, content):
    """Round 5: a .lock holding -1 was 'being written by process -1' (os.kill(-1, 0) signals
    every process one may)."""
    run = Path(shutil.copytree(regression, tmp_path / "run"))
    (run / ".lock").write_text(content)
    (tmp_path / "new.csv").write_text("x\n0.5\n")
    assert run_cli(["predict", str(run), "--input", str(tmp_path / "new.csv")]) == 0
    assert run_cli(["resume", str(run)]) == 0  # takes the stale lock over
    assert "being written" not in capsys.readouterr().err


def test_the_python_api_refuses_arguments_of_the_wrong_kind(regression, tmp_path):
    """Round 4: load_run(123), run("str"), compose("...") and a file as run_dir raised raw
    TypeError, AttributeError or FileExistsError; code="dir" was read letter by letter."""
    cases = [lambda: headbayes.load_run(123), lambda: headbayes.run("config"),
             lambda: headbayes.compose("+experiment=sin_head"),
             lambda: headbayes.run(headbayes.compose(SMALL), tmp_path / "a_file"),
             lambda: headbayes.compose(None),  # B17 (round 5): TypeError
             lambda: headbayes.load_run(regression, code=123)]
    (tmp_path / "a_file").write_text("")
    for case in cases:
        with pytest.raises(ConfigError):
            case()
    assert headbayes.load_run(regression, code=str(tmp_path))._code == (str(tmp_path),)


def test_a_file_whose_only_inputs_are_text_names_them(tmp_path):
    """Round 4 (F8): x written as 1.0D+00 was dropped as a text column, and the message said
    the file had no column besides the target."""
    from headbayes.datasets import make_dataset

    (tmp_path / "fortran.csv").write_text(
        "x,y\n" + "".join(f"{i}.0D+00,{i % 3}\n" for i in range(1, 9)))
    cfg = headbayes.compose(["data=csv", f"data.path={tmp_path / 'fortran.csv'}",
                             "data.target=y"])
    with pytest.raises(ConfigError, match="x hold values that are not numbers"):
        make_dataset(cfg.data)


@pytest.mark.parametrize("override", ["data.frequency=inf", "data.phase=nan"])
def test_a_curve_that_is_not_finite_is_refused_before_sampling(override):
    """Round 4 (F9): an infinite frequency or a NaN phase made every target NaN and ended in
    exit 3 with advice to lower the step size."""
    with pytest.raises(ConfigError, match=f"`{override.split('=')[0]}` must be a finite number"):
        headbayes.compose(["+experiment=sin_head", "data=sin_shift", override])
