"""The `headbayes` command: run, resume, report, summarize, inspect, export, predict.

`run` hands its arguments to Hydra (`app.main`); the others are plain argparse and import JAX
only if they must. Exit codes: 0 ok, 1 bug, 2 bad config or usage, 3 sampling failed,
4 run directory missing files or corrupt.
"""

import argparse
import contextlib
import dataclasses
import os
import signal
import sys
import threading
from pathlib import Path

from headbayes.app import console
from headbayes.core.errors import (SIGNALS_RECEIVED, ConfigError, HeadbayesError, RunDirError,
                                   SignalStop, raise_if_signalled)
from headbayes.core.settings import settings
from headbayes.job.signals import second_signal_ends_process
from headbayes.report import plotworker

__all__ = ["main", "run_cli"]

USAGE = """\
usage: headbayes <command> [args]

commands:
  run [-m] [--profile] [OVERRIDES...]
                            one run (with -m, a Hydra multirun sweep); e.g. +experiment=sin_head;
                            --profile prints the seconds of every stage (meta.json keeps them)
  resume [--profile] RUN_DIR [KEY=VALUE ...]
                            finish an interrupted run from its last committed chunk
  report RUN_DIR            recompute metrics and plots from a run directory's files alone
  summarize SWEEP_DIR       one table over every job of a sweep; writes SWEEP_DIR/summary.csv
  inspect [OVERRIDES...]    leaf table: path, shape, size, sampled or frozen
  export RUN_DIR            the chain as an ArviZ netCDF file (pip install 'headbayes[arviz]')
  predict RUN_DIR --input FILE [--output FILE]
                            posterior predictive of a finished run on new inputs (csv or npz)

'headbayes <command> --help' shows each command's usage.
report, resume, predict and export take --code DIR: a folder whose modules you trust for a run's
own model._target_ (docs/run-directory.md).
exit codes: 0 ok, 1 bug, 2 bad config or usage, 3 sampling failed, 4 bad run directory,
130/143 stopped by SIGINT/SIGTERM (a run continues with resume)"""

PACKAGE_CONFIGS = Path(__file__).parents[1] / "configs"  # src/headbayes/configs


MANY_CHECKS = 20  # swept values whose pre-flight check is announced (each composes a config)


def preflight(args: list[str]) -> bool:
    """Check a `run` command line before Hydra starts: keys, types and ranges. True when
    that checked every job of the sweep, when only plain keys are swept: Hydra's sweeper then
    need not compose every job before the sweep (`hydra_plugins.headbayes_sweeper`).

    In a sweep every value of every swept key is checked (with the other swept keys at
    their first value); glob and interval sweeps are left to the jobs, which validate again.
    The config is composed once; a swept plain key is then set on a copy, a swept group or
    added key composes again.
    """
    from hydra.core.override_parser.types import ValueType

    from headbayes.config import composition  # Hydra and JAX: only when needed
    from headbayes.report.tracking import check_store
    from headbayes.config.typed import CONFIG_GROUPS

    output_dir = settings().output_dir
    if output_dir.exists() and not output_dir.is_dir():
        raise ConfigError(f"HEADBAYES_OUTPUT_DIR: {output_dir} is a file, not a folder for runs")
    _check_writable(output_dir, "HEADBAYES_OUTPUT_DIR")
    fixed, swept, every_job = [], [], True
    parsed = composition.parse_overrides(args)
    multirun = any(a in ("-m", "--multirun") for a in args)
    own_sweeper = not any(o.key_or_group == "hydra/sweeper" for o in parsed)
    for override in parsed:
        if override.key_or_group in ("hydra.run.dir", "hydra.sweep.dir"):
            _check_run_folder(str(override.value() or ""), override.key_or_group)
        if composition.is_hydra_key(override.key_or_group):
            every_job = every_job and not override.is_sweep_override()
            continue
        _check_sweep(override, multirun, own_sweeper)
        if not override.is_sweep_override():
            fixed.append(override.input_line)
        elif override.is_discrete_sweep() and override.value_type != ValueType.GLOB_CHOICE_SWEEP:
            swept.append(override)
        else:
            return False
    lines = [[f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] for o in swept]
    firsts = [values[0] for values in lines]
    checks = 1 + sum(len(values) - 1 for values in lines)
    if checks >= MANY_CHECKS:
        console.stderr.print(f"checking {checks:,} swept values before the sweep starts ...")
    base = composition.compose_dict(fixed + firsts)
    check_store(composition.checked(base).tracking)  # before anything is sampled
    for i, override in enumerate(swept):
        key = override.key_or_group
        plain = (key not in CONFIG_GROUPS and "/" not in key and not override.is_add()
                 and not override.is_force_add())
        every_job = every_job and plain
        for value, line in list(zip(override.sweep_iterator(), lines[i]))[1:]:
            if plain:
                composition.checked(composition.with_value(base, key, value))
            else:
                composition.compose(fixed + firsts[:i] + [line] + firsts[i + 1:])
    return every_job


def _check_sweep(override, multirun: bool, own_sweeper: bool) -> None:
    """A sweep without -m, or an interval for headbayes' sweeper (which takes lists): one line
    instead of Hydra's multi-line message or traceback."""
    if not override.is_sweep_override():
        return
    line = override.input_line
    if not multirun:
        raise ConfigError(f"'{line}' is a sweep: add -m to run one job per value (or quote the "
                          f"value to pass it as text)")
    from headbayes.config.typed import CONFIG_GROUPS

    if override.value_type is not None and override.value_type.name == "GLOB_CHOICE_SWEEP" \
            and override.key_or_group not in CONFIG_GROUPS:
        raise ConfigError(f"'{line}': glob() chooses among a config group's option files "
                          f"(such as sampler or mask); {override.key_or_group} is a key: "
                          f"list its values (KEY=a,b,c or range(...))")
    if override.is_interval_sweep() and own_sweeper:
        raise ConfigError(f"'{line}': the basic sweeper takes lists (KEY=a,b,c, range(...), "
                          f"choice(...)); an interval needs a sampling sweeper "
                          f"(hydra/sweeper=optuna, ...)")


HYDRA_VALUE_FLAGS = ("--cfg", "-c", "--package", "-p", "--experimental-rerun")
INFO_TOPICS = ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath")
HYDRA_MODES = {"-m": "multirun", "--multirun": "multirun", "--cfg": "cfg", "-c": "cfg",
               "--info": "info", "-i": "info", "--run": "run", "-r": "run",
               "--shell-completion": "completion", "-sc": "completion"}  # one at a time
CONFIG_SOURCE_FLAGS = ("--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd")


def _flags_first(args: list[str]) -> list[str]:
    """`args` with Hydra's flags (and their values) before the overrides, in their order:
    Hydra's parser takes no flag after an override (`a=1 --cfg job b=2` would end in
    "unrecognized arguments"). The config comes from the package and ./configs only: a flag
    that would choose another source is a ConfigError."""
    flags, overrides, i = [], [], 0
    while i < len(args):
        arg = args[i]
        if arg.partition("=")[0] in CONFIG_SOURCE_FLAGS:
            raise ConfigError(f"{arg.partition('=')[0]} is not supported: headbayes reads its "
                              f"configs from the package and from ./configs of the directory "
                              f"you run from (your own files: ./configs/GROUP/NAME.yaml, such as "
                              f"./configs/experiment/NAME.yaml)")
        takes_value = (arg in HYDRA_VALUE_FLAGS
                       or arg in ("--info", "-i") and i + 1 < len(args)
                       and args[i + 1] in INFO_TOPICS)
        if arg in HYDRA_MODES and any(a in HYDRA_MODES and HYDRA_MODES[a] != HYDRA_MODES[arg]
                                      for a in flags):
            raise ConfigError(f"{arg} cannot be combined with "
                              f"{next(a for a in flags if a in HYDRA_MODES)}: choose one of "
                              f"-m, --cfg, --info, --run and --shell-completion")
        if not arg.startswith("-"):
            overrides.append(arg)
        else:
            flags.extend(args[i:i + 2] if takes_value else [arg])
            i += 1 if takes_value else 0
        i += 1
    return flags + overrides


def _run(args: list[str]) -> int:
    from headbayes.config import composition  # Hydra and JAX: only when needed

    profile = "--profile" in args
    args = _flags_first([a for a in args if a != "--profile"])
    help_only = any(a in ("-h", "--help", "--hydra-help") for a in args)
    if not help_only and not any(a in ("--cfg", "-c", "--info", "-m", "--multirun") for a in args):
        plotworker.launch()  # a single job's: imports matplotlib in another process meanwhile
    composition.PREFLIGHT["checked_every_job"] = not help_only and preflight(args)
    from headbayes.app import hydra_task as app
    from headbayes.app import session as job

    job.PROFILE = profile

    if settings().debug:
        os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra's own errors with their traceback too
    argv, sys.argv = sys.argv, ["headbayes run", *args]
    try:
        app.main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if code == 1 and not app.JOB_STATE["started"]:
            return 2  # Hydra could not compose the config; it printed why
        return code
    finally:
        sys.argv = argv
    return app.JOB_STATE["failed"][0][1] if app.JOB_STATE["failed"] else 0


def _inspect(args: list[str]) -> int:
    from headbayes.config import composition  # Hydra and JAX: only when needed

    if any(a in ("-h", "--help") for a in args):
        print("usage: headbayes inspect [+experiment=NAME] [KEY=VALUE ...]\n\n"
              "Print every parameter leaf of the configured model: path, shape, size, and whether\n"
              "the mask samples it or keeps it frozen (with mask.groups: by which group).\n"
              "Nothing is compiled or written.")
        return 0
    from headbayes.models.mask import assign_groups, leaf_table, select
    from headbayes.models import leaf_shapes

    if any(a in ("-m", "--multirun") for a in args):
        raise ConfigError("inspect shows one config: drop -m (sweeps are for `headbayes run`)")

    cfg = composition.compose(args)
    shapes = leaf_shapes(cfg)
    sampled = select(list(shapes), cfg.mask.include, cfg.mask.exclude)
    groups = assign_groups(list(shapes), sampled, cfg.mask.groups)
    console.stdout.print(console.leaf_table_view(leaf_table(shapes, sampled, groups)))
    if getattr(cfg.likelihood, "sigma", None) == "sampled":
        from headbayes.posterior.noise import NOISE_LEAF

        console.stdout.print(f"also sampled: {NOISE_LEAF} (likelihood.sigma=sampled), 1 number")
    from headbayes.posterior.physics import coefficient_leaves

    extra = list(coefficient_leaves(cfg.likelihood))
    if extra:  # a physics likelihood's unknown coefficients and sampled sds
        console.stdout.print(f"also sampled: {', '.join(extra)} (likelihood.unknown, sampled "
                             f"sds), {len(extra)} number{'s' if len(extra) > 1 else ''}")
    return 0


def _report(args: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="headbayes report",
        description="Recompute metrics.json, predictive.png and trace.png from a run directory.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--no-plots", action="store_true", help="write metrics.json only")
    _code_option(parser)
    ns = parser.parse_args(args)
    from headbayes.report.write import write_report
    from headbayes.core.rundir import RunFiles

    figures, notes = write_report(ns.run_dir, plot=not ns.no_plots, code=_vouched(ns))
    console.print_report(figures, notes)
    console.stdout.print(f"wrote {ns.run_dir / RunFiles.METRICS}")
    return 0


def _resume(args: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="headbayes resume",
        description="Finish an interrupted run from its last committed chunk, with the run's "
                    "saved config; the chain equals an uninterrupted run's. A finished run is "
                    "left unchanged. KEY=VALUE overrides must equal the saved values: a "
                    "changed setting is refused (exit 2) with the keys that differ. "
                    "tracking.* keys are the exception: the saved ones are never followed; "
                    "give tracking.backend=mlflow here to log the finished run.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    parser.add_argument("--profile", action="store_true",
                        help="print the seconds of every stage, and of the stopped processes "
                             "before this one (meta.json keeps them)")
    _code_option(parser)
    ns = parser.parse_args(args)
    code = _vouched(ns)
    plotworker.launch()  # imports matplotlib in another process while this one works
    from headbayes.app import session as job
    from headbayes.config.typed import TrackingConfig, differences, validate
    from headbayes.report.tracking import check_store
    from headbayes.core.rundir import RunFiles

    job.PROFILE = ns.profile

    # a run directory's own tracking settings are not followed (it may come from someone
    # else, its tracking.uri anyone's server): only the tracking.* keys typed here count
    from headbayes.config.saved import load_config

    saved = dataclasses.replace(load_config(RunFiles.existing(ns.run_dir), code=code),
                                tracking=TrackingConfig())
    cfg = validate(_with_overrides(saved, ns.overrides))
    changed = differences(saved, cfg)
    if changed:
        raise ConfigError(f"resume continues the saved run and cannot change its settings; "
                          f"these differ: {'; '.join(changed)}. Start a new run instead")
    check_store(cfg.tracking)
    with job.owned(ns.run_dir):
        job.run_and_report(cfg, ns.run_dir, resume=True)  # its model: checked above
    return 0


def _code_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--code", type=Path, action="append", metavar="DIR", default=[],
                        help="a folder whose Python modules you trust: a run directory's "
                             "config (with your own model._target_) may import its model from "
                             "it even when the run recorded other source (repeatable); "
                             "docs/run-directory.md")


def _vouched(ns) -> tuple:
    from headbayes.models.code import vouched_folders

    return vouched_folders(ns.code)


def _with_overrides(cfg, overrides: list[str]):
    """`cfg` (a RunConfig) with KEY=VALUE overrides applied and type-checked."""
    from omegaconf import OmegaConf

    from headbayes.config import composition  # Hydra and JAX: only when needed
    from headbayes.config.typed import CONFIG_GROUPS

    if not overrides:  # nothing to parse: Hydra's parser (0.1 s to import) is not needed
        return cfg
    malformed = [item for item in overrides if "=" not in item]
    if malformed:
        raise ConfigError(f"override '{malformed[0]}' must be KEY=VALUE")
    parsed = composition.parse_overrides(overrides)
    composition.check_overrides(parsed)
    swept = [o.input_line for o in parsed if o.is_sweep_override()]
    if swept:
        raise ConfigError(f"'{swept[0]}' is a sweep; resume continues one run with its saved "
                          f"values")
    hydra_keys = [o.input_line for o in parsed if composition.is_hydra_key(o.key_or_group)]
    if hydra_keys:
        raise ConfigError(f"'{hydra_keys[0]}': resume continues the run in its own directory "
                          f"and takes no hydra.* override")
    groups = [o.input_line for o in parsed if "." not in o.key_or_group
              and o.key_or_group in CONFIG_GROUPS]
    if groups:
        raise ConfigError(f"'{groups[0]}' chooses a config group's option; resume continues "
                          f"the saved run and takes KEY=VALUE overrides of its keys only "
                          f"(another option is a new run)")
    merged = OmegaConf.structured(cfg)
    for override in parsed:
        merged = composition.with_value(merged, override.key_or_group, override.value())
    return composition.to_run_config(merged)


def _export(args: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="headbayes export",
        description="Write the run's chain as an ArviZ InferenceData netCDF file: groups "
                    "posterior, sample_stats, observed_data, constant_data (dims chain, draw). "
                    "Needs the optional extra: pip install 'headbayes[arviz]'.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--output", type=Path, help="default: RUN_DIR/inference_data.nc")
    _code_option(parser)
    ns = parser.parse_args(args)
    from headbayes.report.export import export_netcdf
    from headbayes.core.rundir import RunFiles

    RunFiles.finished_alone(ns.run_dir)
    console.stdout.print(f"wrote {export_netcdf(ns.run_dir, ns.output, _vouched(ns))}")
    return 0


def _summarize(args: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="headbayes summarize",
        description="One row per job of a sweep (overrides, status, metrics, gradient "
                    "evaluations, wall time); writes SWEEP_DIR/summary.csv with every metric.")
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--markdown", action="store_true",
                        help="print the table as markdown (for docs) instead of a rich table")
    parser.add_argument("--metrics", metavar="KEY[,KEY...]",
                        help="the table's columns after the overrides: these metrics.json keys "
                             "(and sampled, grad_evals, wall_s) instead of the main ones")
    parser.add_argument("--plot", metavar="METRIC[,METRIC...]",
                        help="also plot these metrics against the number of sampled parameters "
                             "(SWEEP_DIR/<metrics>_vs_sampled.png)")
    ns = parser.parse_args(args)
    from rich.table import Table

    from headbayes.report.summarize import (checked_metrics, collect_jobs, markdown_table,
                                            table_cell, table_columns, write_summary)

    rows = collect_jobs(ns.sweep_dir)
    metrics = None if ns.metrics is None else checked_metrics(ns.metrics, rows)
    path = write_summary(ns.sweep_dir, rows)
    if ns.plot:
        from headbayes.report.write import METRIC_KEYS
        from headbayes.report.summarize import plot_against_sampled

        metrics = [m.strip() for m in ns.plot.split(",") if m.strip()]
        unknown = [m for m in metrics if m not in METRIC_KEYS or m == "verdict"]
        if unknown or not metrics:
            raise ConfigError(f"--plot: unknown metric(s) {unknown or ns.plot!r}; choose from "
                              f"{', '.join(k for k in METRIC_KEYS if k != 'verdict')}")
        console.stdout.print(f"wrote {plot_against_sampled(ns.sweep_dir, rows, metrics)}")
    damaged = [row for row in rows if "damage" in row]
    if ns.markdown:
        print(markdown_table(rows, console.format_value, metrics))
    else:
        table = Table(title=f"{len(rows)} jobs in {ns.sweep_dir}")
        columns = table_columns(rows, metrics)
        for column in columns:
            table.add_column(column, no_wrap=True)
        for row in rows:
            table.add_row(*(table_cell(row, c, console.format_value) for c in columns))
        console.print_wide(table)
        console.stdout.print(f"wrote {path} (every metric)")
    for row in damaged:
        console.error(f"job {row['job']}: {row['damage']}")
    return 4 if damaged else 0


def _predict(args: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="headbayes predict",
        description="The posterior predictive of a finished run on new inputs, from the run "
                    "directory alone. FILE (.csv with a header row, or .npz with one array per "
                    "column) has the training input columns by name, in any order, in the "
                    "data's original units (a target column is ignored). Output per target: "
                    "mean, sd, q05, q50, q95 with observation noise, "
                    "and the same of the noiseless function with the suffix _f, in original "
                    "units (the input columns first).")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--input", type=Path, required=True, metavar="FILE")
    parser.add_argument("--output", type=Path, metavar="FILE",
                        help="write a .csv (or .npz) instead of printing a table")
    _code_option(parser)
    ns = parser.parse_args(args)
    from headbayes.report.predict import check_output, predict_arrays, read_inputs, write_table
    from headbayes.core.rundir import RunFiles

    RunFiles.finished_alone(ns.run_dir)
    if ns.output:
        check_output(ns.output, ns.run_dir)
        if ns.output.exists() and ns.output.resolve() == ns.input.resolve():
            raise ConfigError(f"--output {ns.output} is the --input file; name another file")
    code = _vouched(ns)
    names, x, notes = read_inputs(ns.run_dir, ns.input, code)
    for note in notes:
        console.stderr.print(f"note: {note}")
    predicted = predict_arrays(ns.run_dir, x, code=code)
    shown = {(f"input_{n}" if n in predicted else n): x[:, i] for i, n in enumerate(names)}
    clashes = [n for n in names if n in predicted]
    if clashes:  # an input named like an output column: both kept, under distinct names
        console.stderr.print(f"note: input column{'s' if len(clashes) > 1 else ''} "
                             f"{', '.join(clashes)} written as "
                             f"{', '.join('input_' + n for n in clashes)}")
    columns = {**shown, **predicted}
    if ns.output:
        write_table(ns.output, columns)
        console.stdout.print(f"wrote {ns.output} ({len(x)} rows)")
        return 0
    from rich.table import Table

    table = Table(title=f"posterior predictive of {ns.run_dir} at {len(x)} inputs")
    for name in columns:
        table.add_column(name, justify="right")
    for row in zip(*columns.values()):
        table.add_row(*(str(v) if isinstance(v, str) else f"{float(v):.4g}" for v in row))
    console.stdout.print(table)
    return 0


COMMANDS = {"run": _run, "resume": _resume, "report": _report, "summarize": _summarize,
            "inspect": _inspect, "export": _export, "predict": _predict}


def run_cli(argv: list[str]) -> int:
    """Dispatch `argv` (without the program name); return the exit code. SIGTERM and SIGINT
    end any command with 128 + the signal's number and one line, never a traceback (during
    sampling the chunk in flight is committed first: `headbayes.job.pipeline`)."""
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    command, args = argv[0], argv[1:]
    if command not in COMMANDS:
        console.error(f"unknown command '{command}'; expected one of {', '.join(COMMANDS)}")
        print(USAGE, file=sys.stderr)
        return 2
    with _signals_stop():
        try:
            code = COMMANDS[command](args)
            if code < 128:  # a signal not yet reported (swallowed on the way) ends it still
                raise_if_signalled()
            return code
        except HeadbayesError as e:
            console.error(str(e))
            if settings().debug:
                raise
            return e.exit_code
        except (SignalStop, KeyboardInterrupt) as e:  # raised by code, too: a Ctrl-C
            stop = e if isinstance(e, SignalStop) else SignalStop(signal.SIGINT)
            console.error(f"{stop}; what was committed is kept (a run continues with "
                          f"`headbayes resume RUN_DIR`)" if command in ("run", "resume") else
                          f"{stop}; no file was left half-written")
            return stop.exit_code


RUN_MARKS = (".hydra", "run_config.json", "chain")  # what a folder a run wrote holds


def _check_run_folder(text: str, what: str) -> None:
    """ConfigError (exit 2) for a run or sweep folder that cannot be one: empty, a name too
    long, below a file, a symbolic link, or (a run's) a folder holding other files and no run;
    RunDirError (exit 4) when it cannot be written."""
    if not text.strip():
        raise ConfigError(f"{what} is empty: give a folder for the run")
    folder = Path(os.path.abspath(text))
    if any(len(os.fsencode(part)) > 255 for part in folder.parts) or len(str(folder)) > 4000:
        raise ConfigError(f"{what}: {text[:80]}...: a name too long for the file system")
    if folder.is_symlink():
        raise ConfigError(f"{what}: {text} is a symbolic link; give the folder it points to")
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{what}: {text} is a file, not a folder")
    above = next((p for p in folder.parents if os.path.lexists(p)), None)
    if above is not None and not above.is_dir():
        raise ConfigError(f"{what}: cannot create {text}: {above} is a file")
    if (what == "hydra.run.dir" and folder.is_dir() and any(folder.iterdir())
            and not any(os.path.lexists(folder / mark) for mark in RUN_MARKS)):
        raise ConfigError(f"{what}: {text} holds other files and no headbayes run; give a new "
                          f"or empty folder")
    _check_writable(folder, what)


def _check_writable(folder: Path, what: str) -> None:
    """RunDirError (exit 4) when `folder`, or the nearest folder above it that exists, cannot
    be written (a read-only file system, no permission): before Hydra makes the run's folder."""
    existing = Path(os.path.abspath(folder))
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.is_dir() and not os.access(existing, os.W_OK | os.X_OK):
        raise RunDirError(f"{what}: cannot write {folder}: {existing} is not writable (a "
                          f"read-only file system or no permission)")


@contextlib.contextmanager
def _signals_stop():
    """SIGTERM/SIGINT raise SignalStop, and a second one ends the process at once (even inside
    a compiled call: `job.signals.second_signal_ends_process`); a file-size limit makes a
    write fail (exit 4) instead of killing the process (SIGXFSZ ignored). A SignalStop raised
    inside a finalizer or a gc callback (JAX has one), where Python can only ignore it, is not
    printed as a traceback: it is recorded and ends the command all the same. The previous
    handlers come back afterwards."""
    def stop(signum, _frame):
        SIGNALS_RECEIVED.append(signum)  # kept, should the exception be swallowed
        raise SignalStop(signum)

    def unraisable(report):
        if not isinstance(report.exc_value, SignalStop):
            default_unraisable(report)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    wanted = {signal.SIGTERM: stop, signal.SIGINT: stop}
    if hasattr(signal, "SIGXFSZ"):
        wanted[signal.SIGXFSZ] = signal.SIG_IGN
    SIGNALS_RECEIVED.clear()
    previous = {sig: signal.signal(sig, handler) for sig, handler in wanted.items()}
    default_unraisable, sys.unraisablehook = sys.unraisablehook, unraisable
    try:
        with second_signal_ends_process():  # even inside a compiled call
            yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.unraisablehook = default_unraisable
        SIGNALS_RECEIVED.clear()


def main(argv: list[str] | None = None) -> None:
    try:
        code = run_cli(sys.argv[1:] if argv is None else argv)
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    if code in (128 + signal.SIGINT, 128 + signal.SIGTERM):
        # stopped by a signal: everything committed is on disk (fsync'd); leave now rather
        # than wait for threads a library started (matplotlib's font-cache timer, say)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _leave(code)


def _leave(code: int) -> None:
    """Exit with `code` without the interpreter's teardown, which after a run takes about 0.5 s
    on a CPU (freeing XLA's client and every module's objects) and has nothing left to do: the
    atexit handlers run (logging's flush among them), the standard streams are flushed; every
    file headbayes writes is already closed and synced. While a thread that is not a daemon is
    alive (a launcher's worker pool, which shuts down in the interpreter's own exit), the
    interpreter exits as usual."""
    import atexit

    if any(thread is not threading.main_thread() and not thread.daemon
           for thread in threading.enumerate()):
        sys.exit(code)
    getattr(atexit, "_run_exitfuncs", lambda: None)()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
