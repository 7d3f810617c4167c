"""End-to-end: the `headbayes` command in a subprocess, on the seed's and tiny configs."""

import csv
import json
import shutil
import subprocess
import sys

import pytest

from headbayes.core import store

TINY = ["sampler.warmup=20", "sampler.keep=10", "sampler.thin=1"]
RUN_FILES = [".hydra/config.yaml", ".hydra/overrides.yaml", ".hydra/hydra.yaml", "mask.json",
             "params.npz", "chain/manifest.json", "metrics.json", "meta.json", "predictive.png",
             "trace.png"]


def assert_clean_error(result, code, *fragments):
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "headbayes: error:" in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


def test_seed_run_then_report(headbayes, tmp_path):
    run_dir = tmp_path / "run"
    result = headbayes("run", "+experiment=sin_head", "--profile", f"hydra.run.dir={run_dir}",
                       check_code=0)
    assert "rel_l2" in result.stdout and "sum of stages" in result.stdout
    for name in RUN_FILES:
        assert (run_dir / name).is_file(), name
    figures = json.loads((run_dir / "metrics.json").read_text())
    # the seed's contract
    assert figures["unmasked_var_max"] == 0.0
    assert figures["masked_var_min"] > 1e-8
    assert figures["rel_l2"] < 2
    assert figures["band_median"] > 1e-4
    # the chain holds sampled leaves only, (chain, draw, *shape); params.npz holds all
    chain = store.load_chain(run_dir)
    assert {k: v.shape for k, v in chain.items()} == {
        "output_layer.weight": (1, 400, 1, 16), "output_layer.bias": (1, 400, 1)}
    assert len(store.read_npz(run_dir / "params.npz")) == 6
    meta = json.loads((run_dir / "meta.json").read_text())
    assert set(meta["timings"]) >= {"compile_s", "sampling_s", "total_s", "stages", "wall_s"}
    stages, wall = meta["timings"]["stages"], meta["timings"]["wall_s"]
    assert {"startup", "model", "compile", "warmup", "sampling", "writing", "report",
            "plots"} <= set(stages)
    assert 0.95 * wall <= sum(stages.values()) <= wall  # every second of the job accounted for
    assert meta["versions"]["jax"]
    # the printed compile time is every compile of the job (model, sampling program, report)
    compiled = meta["timings"]["jax_compile_s"]
    assert 0.8 * meta["timings"]["compile_s"] <= compiled <= wall  # events leave out Python
    assert f"compile {compiled:.2f} s, sampling" in result.stdout
    # report recomputes the same figures from the files alone
    (run_dir / "metrics.json").unlink()
    (run_dir / "predictive.png").unlink()
    headbayes("report", run_dir, check_code=0)
    assert json.loads((run_dir / "metrics.json").read_text()) == figures
    assert (run_dir / "predictive.png").is_file()
    # paths print as text, never as rich markup or emoji codes
    marked = tmp_path / "m[red]y:smile:[/]"
    shutil.copytree(run_dir, marked)
    assert f"wrote {marked / 'metrics.json'}" in headbayes("report", marked,
                                                          check_code=0).stdout


@pytest.mark.parametrize("override,fragments", [
    ("sampler.step_size=-1", ["`sampler.step_size` must be a finite number > 0, got -1.0"]),
    ("sampler.step_size=nan", ["`sampler.step_size`", "got nan"]),
    ("sampler.step_size=inf", ["`sampler.step_size`", "got inf"]),
    ("sampler.keep=0", ["`sampler.keep` must be an integer >= 1, got 0"]),
    ("sampler.stepsize=1e-3", ["unknown config key 'sampler.stepsize'",
                               "did you mean 'sampler.step_size'"]),
    ("mask.include=[outptu_layer]", ["selector 'outptu_layer' matches no parameter",
                                     "closest: 'output_layer'", "output_layer.weight"]),
    ("sampler.step_size=fast", ["could not be converted to Float", "sampler.step_size"]),
    ("sampler=nope", ["Could not find 'sampler/nope'", "sgld"]),
    ("seed=[1", ["no viable alternative"]),
    ("seed=${seed}", ["`seed`: Recursive interpolation detected"]),  # P1 (round 5)
    ("sampler.step_size=${oc.env:HEADBAYES_NOT_SET}", ["`sampler.step_size`: KeyError",
                                                       "HEADBAYES_NOT_SET"]),
])
def test_bad_input_exits_2_without_traceback(refused_run, tmp_path, override, fragments):
    result = refused_run("+experiment=sin_head", override, f"hydra.run.dir={tmp_path}/r")
    assert_clean_error(result, 2, *fragments)
    assert not (tmp_path / "r").exists()  # rejected before anything ran


@pytest.mark.parametrize("flag", ["--config-dir=configs", "-cd", "--config-name=other",
                                  "--config-path=x"])
def test_a_flag_that_chooses_another_config_source_is_refused(refused_run, tmp_path, flag):
    result = refused_run("+experiment=sin_head", flag, "configs", f"hydra.run.dir={tmp_path}/r")
    assert_clean_error(result, 2, f"{flag.partition('=')[0]} is not supported",
                       "./configs/experiment/NAME.yaml")


def test_a_glob_over_a_key_is_refused(refused_run):
    """P3 (round 5): 'seed=glob(*)' launched 0 jobs and exited 0."""
    result = refused_run("-m", "+experiment=sin_head", "seed=glob(*)")
    assert_clean_error(result, 2, "glob() chooses among a config group's option files",
                       "seed is a key")


@pytest.mark.parametrize("args", [["-m", "seed=0,1", "--cfg", "job"],
                                  ["seed=0", "--info", "--cfg", "job"], ["-r", "-m"]])
def test_two_of_hydra_s_modes_are_refused_in_one_line(refused_run, args):
    """Hydra raised a ValueError with its traceback."""
    result = refused_run("+experiment=sin_head", *args)
    assert_clean_error(result, 2, "cannot be combined with",
                       "choose one of -m, --cfg, --info, --run and --shell-completion")


@pytest.mark.parametrize("args,expected", [
    (["a=1", "--cfg", "job", "b=2"], ["--cfg", "job", "a=1", "b=2"]),
    (["a=1", "--info", "config", "b=2,3"], ["--info", "config", "a=1", "b=2,3"]),
    (["a=1", "-m", "b=2,3", "--resolve"], ["-m", "--resolve", "a=1", "b=2,3"]),
    (["a=1", "--info", "b=2"], ["--info", "a=1", "b=2"]),
    (["--package", "sampler", "a=1", "--resolve"], ["--package", "sampler", "--resolve", "a=1"]),
])
def test_hydra_flags_may_follow_the_overrides(args, expected):
    """Hydra's parser takes no flag after an override ("unrecognized arguments")."""
    from headbayes.app.cli import _flags_first

    assert _flags_first(args) == expected


def test_sampling_failure_exits_3_naming_step_and_leaf(headbayes, tmp_path):
    run_dir = tmp_path / "run"
    result = headbayes("run", "+experiment=sin_head", "sampler.step_size=5",
                       f"hydra.run.dir={run_dir}")
    assert_clean_error(result, 3, "non-finite value at step", "in leaf 'output_layer.",
                       "smaller sampler.step_size")
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "failed" and status["exit_code"] == 3
    assert (run_dir / "params.npz").is_file() and (run_dir / "mask.json").is_file()
    report = headbayes("report", run_dir)
    assert_clean_error(report, 4, "no committed draws")


def test_multirun_then_summarize(headbayes, tmp_path):
    sweep = tmp_path / "sweep"
    swept = headbayes("run", "-m", "+experiment=sin_head", "sampler.step_size=3e-4,1e-3",
                      "seed=0,1", *TINY, "report.plots=false", f"hydra.sweep.dir={sweep}",
                      check_code=0)
    assert f"sweep directory: {sweep} (4 jobs)" in swept.stdout  # says where it wrote
    assert not list(sweep.rglob("*.png")) and (sweep / "0" / "metrics.json").is_file()
    result = headbayes("summarize", sweep, check_code=0)
    assert "4 jobs" in result.stdout
    assert "…" not in result.stdout and "verdict" in result.stdout  # never cropped
    with open(sweep / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["job"] for r in rows] == ["0", "1", "2", "3"]
    assert {(float(r["sampler.step_size"]), r["seed"]) for r in rows} == {
        (3e-4, "0"), (3e-4, "1"), (1e-3, "0"), (1e-3, "1")}
    assert all(r["status"] == "ok" and float(r["unmasked_var_max"]) == 0.0 for r in rows)
    figures = json.loads((sweep / "0" / "metrics.json").read_text())
    assert {"exact_band_max", "num_draws", "coverage_90"} & set(figures)  # once dropped
    for key, value in figures.items():  # summary.csv holds every metric of every job
        assert rows[0][key] == str(value), key
    first, last = (json.loads((sweep / job / "meta.json").read_text())["timings"]
                   for job in ("0", "3"))
    # a later job in the same process times itself from the end of the job before it
    assert last["stages"]["startup"] < first["stages"]["startup"]
    assert last["wall_s"] < first["wall_s"] + last["total_s"]
    assert 0.95 * last["wall_s"] <= sum(last["stages"].values()) <= last["wall_s"]


def test_inspect_counts_sampled_parameters(headbayes):
    result = headbayes("inspect", "+experiment=sin_head", check_code=0)
    assert "17 sampled of 321 parameters" in result.stdout
    narrow = headbayes("inspect", "+experiment=sin_head", "mask.include=[output_layer.weight]",
                       check_code=0)
    assert "16 sampled of 321 parameters" in narrow.stdout


def test_user_experiment_in_working_directory(headbayes, tmp_path):
    experiments = tmp_path / "project" / "configs" / "experiment"
    experiments.mkdir(parents=True)
    (experiments / "mine.yaml").write_text(
        "# @package _global_\ndefaults:\n  - /experiment/sin_head\n"
        "seed: 7\nsampler: {warmup: 5, keep: 3, thin: 1}\nmask: {include: [output_layer.bias]}\n")
    run_dir = tmp_path / "run"
    headbayes("run", "+experiment=mine", f"hydra.run.dir={run_dir}", cwd=tmp_path / "project",
              check_code=0)
    chain = store.load_chain(run_dir)
    assert list(chain) == ["output_layer.bias"] and chain["output_layer.bias"].shape == (1, 3, 1)
    inspect = headbayes("inspect", "+experiment=mine", cwd=tmp_path / "project", check_code=0)
    assert "1 sampled of 321 parameters" in inspect.stdout


def test_report_errors(headbayes, tmp_path):
    assert_clean_error(headbayes("report", tmp_path / "nope"), 2, "does not exist")
    (tmp_path / "empty").mkdir()
    assert_clean_error(headbayes("report", tmp_path / "empty"), 4, "missing file")


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["report", "--help"],
                                  ["summarize", "--help"], ["inspect", "--help"]])
def test_help(headbayes, args):
    result = headbayes(*args, check_code=0)
    assert "usage: headbayes" in result.stdout


def test_unknown_command(headbayes):
    assert_clean_error(headbayes("sample"), 2, "unknown command 'sample'")


@pytest.mark.slow  # 7 s; held-out metrics: test_real_data (uci), test_own_model (a csv)
def test_own_csv_file_gives_held_out_metrics(headbayes, tmp_path):
    rng = __import__("numpy").random.default_rng(0)
    x = rng.uniform(-1, 1, size=(60, 2))
    y = x[:, 0] - 2 * x[:, 1] + 0.1 * rng.normal(size=60)
    lines = ["u,v,target"] + [f"{a},{b},{t}" for (a, b), t in zip(x, y)]
    (tmp_path / "mine.csv").write_text("\n".join(lines) + "\n")
    run_dir = tmp_path / "run"
    headbayes("run", "+experiment=sin_head", "data=csv", "data.path=mine.csv",
              "data.inputs=[u,v]", "data.target=target", "model.in_features=2",
              "sampler=laplace", "sampler.warmup=200", "sampler.keep=100",
              "likelihood.reduction=sum", "likelihood.sigma=0.2", f"hydra.run.dir={run_dir}",
              check_code=0)
    figures = json.loads((run_dir / "metrics.json").read_text())
    assert figures["rel_l2"] is None and "truth_coverage_90" not in figures
    assert 0 <= figures["test_coverage_90"] <= 1 and figures["test_rmse"] < 1
    assert (run_dir / "calibration.png").is_file() and (run_dir / "predictive.png").is_file()
    bad = headbayes("run", "+experiment=sin_head", "data=csv", "data.path=mine.csv",
                    "data.inputs=[u,w]", "data.target=target", "model.in_features=2",
                    f"hydra.run.dir={tmp_path}/bad")
    assert_clean_error(bad, 2, "columns ['w'] not in", "available: u, v, target")


@pytest.mark.slow  # 15 s; `make test-all`
def test_mask_family_sweep_and_plot(headbayes, tmp_path):
    sweep = tmp_path / "sweep"
    headbayes("run", "+sweep=mask_family", "sampler=sgld", "~sampler.mass_matrix",
              "sampler.step_size=1e-5", "sampler.warmup=10", "sampler.keep=5", "sampler.num_chains=1", "body.steps=20",
              f"hydra.sweep.dir={sweep}", check_code=0)
    headbayes("summarize", sweep, "--plot", "rel_l2,test_nll", check_code=0)
    with open(sweep / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["mask"] for r in rows] == ["head", "biases", "hidden_layer_1", "last_two",
                                         "all_but_first", "all"]
    assert [int(r["sampled"]) for r in rows] == [17, 33, 272, 289, 289, 321]
    assert (sweep / "rel_l2_test_nll_vs_sampled.png").is_file()
    bad = headbayes("summarize", sweep, "--plot", "nope")
    assert_clean_error(bad, 2, "--plot: unknown metric(s) ['nope']")


def test_malformed_yaml_names_file_line_and_column(refused_run, tmp_path):
    experiments = tmp_path / "project" / "configs" / "experiment"
    experiments.mkdir(parents=True)
    (experiments / "broken.yaml").write_text(
        "# @package _global_\nsampler: {step_size: [1e-3\nseed: 1\n")
    result = refused_run("+experiment=broken", cwd=tmp_path / "project")
    assert_clean_error(result, 2, "malformed YAML in", "broken.yaml, line 3, column 5")


@pytest.mark.slow  # about 4-6 s: make test-all
def test_summarize_marks_a_damaged_job_and_shows_the_others(headbayes, tmp_path):
    """sw10: one damaged job left no table at all."""
    sweep = tmp_path / "sweep"
    headbayes("run", "-m", "+experiment=sin_head", "seed=0,1", *TINY,
              f"hydra.sweep.dir={sweep}", check_code=0)
    part = sweep / "1" / "chain" / "part-00000.npz"
    data = bytearray(part.read_bytes())
    data[100] ^= 0x01
    part.write_bytes(bytes(data))
    result = headbayes("summarize", sweep)
    assert_clean_error(result, 4, "job 1: corrupt chain file", "1/chain/part-00000.npz")
    with open(sweep / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["ok", "damaged (exit 4)"]
    assert rows[0]["rel_l2"] and not rows[1]["rel_l2"]  # no figure of the damaged chain


@pytest.mark.parametrize("launcher", [pytest.param("local_parallel", marks=pytest.mark.slow),
                                      pytest.param("submitit_local", marks=pytest.mark.slow)])
def test_sweep_runs_unchanged_on_other_launchers(headbayes, tmp_path, launcher):
    sweep = tmp_path / "sweep"
    headbayes("run", "-m", "+experiment=sin_head", "seed=0,1", *TINY, f"+launcher={launcher}",
              f"hydra.sweep.dir={sweep}", check_code=0)
    headbayes("summarize", sweep, check_code=0)
    with open(sweep / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["seed"], r["status"]) for r in rows] == [("0", "ok"), ("1", "ok")]
    assert all(float(r["unmasked_var_max"]) == 0.0 for r in rows)
    assert not list(sweep.rglob("*%j*"))  # no folder named literally after submitit's %j


@pytest.mark.parametrize("launcher", [None, pytest.param("local_parallel", marks=pytest.mark.slow),
                                      pytest.param("submitit_local", marks=pytest.mark.slow)])
def test_a_failed_job_sets_the_sweep_exit_code_on_every_launcher(headbayes, tmp_path, launcher):
    sweep = tmp_path / "sweep"
    chosen = [f"+launcher={launcher}"] if launcher else []
    result = headbayes("run", "-m", "+experiment=sin_head", "sampler.step_size=1e-3,1e4",
                       *TINY, *chosen, f"hydra.sweep.dir={sweep}")
    assert result.returncode == 3, result.stderr  # job 1 diverges: non-finite values
    assert "failed (exit 3): sampling failed: non-finite value" in result.stderr  # sw04
    statuses = [json.loads((sweep / str(i) / "status.json").read_text()) for i in (0, 1)]
    assert [s["status"] for s in statuses] == ["ok", "failed"]
    assert "non-finite" in statuses[1]["message"]
    headbayes("summarize", sweep, check_code=0)  # the failed job is listed, not dropped
    with open(sweep / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["ok", "failed (exit 3)"]
    assert rows[1]["rel_l2"] == ""


def test_debug_shows_the_traceback(headbayes, tmp_path, monkeypatch):
    experiments = tmp_path / "project" / "configs" / "experiment"
    experiments.mkdir(parents=True)
    (experiments / "broken.yaml").write_text("# @package _global_\nseed: [1\n")
    monkeypatch.setenv("HEADBAYES_DEBUG", "1")
    result = headbayes("run", "+experiment=broken", cwd=tmp_path / "project")
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "yaml" in result.stderr


def test_the_cli_and_a_job_import_neither_hydra_nor_blackjax_nor_matplotlib():
    """Start-up: `headbayes.app.cli` and `headbayes.app.session` (what `resume` and `headbayes.run`
    run) leave Hydra, blackjax and matplotlib to the code that needs them."""
    code = ("import sys, headbayes.app.cli, headbayes.app.session\n"
            "print([m for m in ('hydra', 'blackjax', 'matplotlib') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_progress_in_a_log_prints_a_line_per_stage_and_at_most_every_30_s(monkeypatch):
    """F13: nothing was printed while a job ran with its output in a log file."""
    import io

    from rich.console import Console

    from headbayes.app import console

    log = io.StringIO()
    monkeypatch.setattr(console, "stderr", Console(file=log, width=200))
    clock = iter([0.0, 1.0, 2.0, 10.0, 45.0, 50.0, 200.0, 201.0])
    monkeypatch.setattr(console.time, "perf_counter", lambda: next(clock))
    with console.sampling_progress() as update:
        update("warmup", 1, 100, 0)          # 1.0: a new stage
        update("warmup", 10, 100, 0)         # 2.0
        update("sampling", 50, 100, 5)       # 10.0: a new stage
        update("sampling", 60, 100, 6)       # 45.0: 35 s after the last line
        update("sampling", 70, 100, 7)       # 50.0
        update("sampling", 100, 100, 10)     # 200.0
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("building the model and compiling")
    assert [line.split(":")[0] + line.split(",")[1] for line in lines[1:]] == [
        "warmup 0 draws kept", "sampling 5 draws kept", "sampling 6 draws kept",
        "sampling 10 draws kept"]


def test_a_long_pre_flight_check_is_announced(monkeypatch, tmp_path):
    import io

    from rich.console import Console

    from headbayes.app import cli, console

    monkeypatch.setenv("HEADBAYES_OUTPUT_DIR", str(tmp_path))
    log = io.StringIO()
    monkeypatch.setattr(console, "stderr", Console(file=log, width=200))
    cli.preflight(["-m", "+experiment=sin_head", "seed=range(5)"])
    assert log.getvalue() == ""
    cli.preflight(["-m", "+experiment=sin_head", "seed=range(25)"])
    assert log.getvalue() == "checking 25 swept values before the sweep starts ...\n"
