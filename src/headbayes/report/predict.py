"""`headbayes predict`: the posterior predictive of a finished run on new inputs.

Uses only the run directory: its config, params.npz, the chain and data.json (input column
names and standardisation constants). Inputs are given in the data's original units and the
outputs come back in them. Per output: `mean`, `sd`, `q05`, `q50`, `q95` of the posterior
predictive with observation noise (the likelihood's `NoisePredictive`: its replicates drawn with
numpy.random.default_rng(0); `mean`/`sd` exact from the draws and its variance), and the
same of the noiseless function with the suffix `_f`. With several outputs each name starts
with the output's index (`0_mean`). A heteroscedastic run's noise is each draw's at each input.
A classifier gives `p_<class>` per class (the posterior mean probability), `predicted` (the
most probable class's name), `entropy` of the predictive and `mutual_information` (the part of
the entropy due to the posterior; `headbayes.report.classify`).
"""

import csv
import io
from pathlib import Path

import numpy as np

from headbayes.config.saved import load_config
from headbayes.core import store
from headbayes.core.errors import ConfigError, RunDirError
from headbayes.core.rundir import RunFiles
from headbayes.datasets import Scaling, describe, make_dataset, scaling_from
from headbayes.datasets.files import (read_table, read_text_table, refuse_non_finite,
                                      regular_file)
from headbayes.engine.predictive import function_draws
from headbayes.models import check_draws, checked_arrays, model_sizes
from headbayes.posterior.likelihoods import make_likelihood, noise_predictive, output_split
from headbayes.posterior.position import chain_leaves, model_draws, noise_draws
from headbayes.report import classify

__all__ = ["predict_arrays", "read_inputs", "check_output", "write_table", "data_description", "STATISTICS"]

STATISTICS = ("mean", "sd", "q05", "q50", "q95")
FLOAT32_MAX = float(np.finfo(np.float32).max)  # the model computes in float32


def _require_finished(run_dir: Path) -> None:
    status = RunFiles(run_dir).status()
    if status.get("status") != "ok":
        raise ConfigError(f"{run_dir} holds no finished run (status.json: "
                          f"{status.get('status', 'missing')}); finish it with "
                          f"`headbayes resume {run_dir}` first")


def data_description(run_dir: Path, cfg) -> dict:
    """data.json: input and target names, standardisation constants (rebuilt from the
    config for a run written before data.json existed)."""
    files = RunFiles(run_dir)
    if files.has(files.DATA):
        return _checked_description(files.read_json(files.DATA), files.path(files.DATA))
    return describe(make_dataset(cfg.data))


DESCRIPTION_LIMIT = 1e100  # |shift| and scale in data.json: data beyond 1e100 is refused too


def _checked_description(description: dict, path: Path) -> dict:
    """data.json's names and standardisation constants, checked (RunDirError, exit 4): names
    are strings (class names distinct), shifts and scales numbers of magnitude at most
    DESCRIPTION_LIMIT, scales positive, one per column."""
    def names(key):
        value = description.get(key)
        if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            raise RunDirError(f"corrupt file {path}: {key} must be a list of column names")
        return value

    columns = {"x": len(names("inputs"))}
    if "classes" in description and (len(set(names("classes"))) != len(description["classes"])
                                     or "" in description["classes"]):
        raise RunDirError(f"corrupt file {path}: classes names a class twice or an empty one")
    if not isinstance(description.get("target"), str):
        raise RunDirError(f"corrupt file {path}: target must be a column name")
    outputs = description.get("y_scale")
    columns["y"] = len(outputs) if isinstance(outputs, list) and outputs else 1
    for key in Scaling._fields:
        value, count = description.get(key), columns[key[0]]
        numbers = np.asarray(value if isinstance(value, list) else [], dtype=object)
        ok = (count > 0 and numbers.shape == (count,)
              and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                      and abs(v) <= DESCRIPTION_LIMIT for v in numbers))  # NaN: False
        if ok and key.endswith("scale"):
            ok = all(v > 0 for v in numbers)
        if not ok:
            kind = "positive numbers" if key.endswith("scale") else "numbers"
            raise RunDirError(f"corrupt file {path}: {key} must hold {count} {kind} of "
                              f"magnitude at most {DESCRIPTION_LIMIT:g}, one per "
                              f"{'input' if key[0] == 'x' else 'output'} column")
    return description


def predict_arrays(run_dir: Path, x: np.ndarray, max_bytes: int = 256 * 2**20,
                   code: tuple = (), model=None) -> dict:
    """{column: array (n,)} of the predictive at the rows of `x` (original units, columns in
    the training order); rows are taken in blocks whose draws stay under `max_bytes`. `code`:
    folders a saved `model._target_` may be imported from; `model`: the object a run of
    `headbayes.fit` was given (`config.saved.load_config`)."""

    run_dir = Path(run_dir)
    files = RunFiles(run_dir)
    _require_finished(run_dir)
    cfg = load_config(files, learned=True, code=code, model=model)
    description = data_description(run_dir, cfg)
    _check_inputs(x, description["inputs"])
    scaling = scaling_from(description)
    params = checked_arrays(files.read_params(), cfg, files.path(files.PARAMS))
    chain, _ = files.chain(cfg.sampler, chain_leaves(cfg))
    check_draws(model_draws(chain), params, files.root / "chain")
    draws = int(np.prod(next(iter(chain.values())).shape[:2]))
    outputs = model_sizes(cfg)[1]  # the network's: classes, or mean and log-scale
    rows = max(1, max_bytes // (16 * draws * outputs))
    noise_model = noise_predictive(cfg.likelihood.name)  # None: a classifier
    rng = np.random.default_rng(0)
    with np.errstate(over="ignore", invalid="ignore"):
        x_model = scaling.x_to_model(x)
    if not np.isfinite(x_model).all():
        raise ConfigError("inputs lie so far from the training data, in its standard "
                          "deviations (data.json's x_shift and x_scale), that the model's "
                          "units overflow float32")
    blocks = []
    with np.errstate(all="ignore"):  # a non-finite prediction is refused below
        for first in range(0, len(x), rows):
            f = function_draws(cfg, params, model_draws(chain), x_model[first:first + rows])
            if noise_model is None:
                blocks.append(_class_columns(f, cfg.likelihood.name, description["classes"]))
                continue
            f = np.asarray(f, np.float64).reshape((-1,) + f.shape[2:])  # (draws, rows, out)
            f, noise = _mean_and_noise(cfg, f, chain)
            f, noise = scaling.y_to_original(f), noise * scaling.y_scale
            blocks.append(_summaries(f, noise_model.replicate(rng, f, noise), noise,
                                     noise_model.variance))
    columns = {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}
    numbers = [v for v in columns.values() if v.dtype.kind == "f"]
    bad = np.flatnonzero(~np.all([np.isfinite(v) for v in numbers], axis=0))
    if bad.size:  # never a table of NaN with exit 0
        raise ConfigError(f"the predictive is not finite at {bad.size} of the {len(x)} input "
                          f"rows (the first: row {bad[0] + 1}): the model's outputs are not "
                          f"finite there, or the inputs lie far outside the training data")
    return columns


def _mean_and_noise(cfg, f: np.ndarray, chain: dict) -> tuple:
    """(function draws, noise scale) (draws, n, out) in model units: the noise is the likelihood's
    σ, each draw's σ when sampled, or each draw's and point's when the network predicts it."""

    split = output_split(cfg.likelihood.name)
    if split is not None:
        return split(f)
    sampled = noise_draws(chain)
    if sampled is not None:
        return f, np.broadcast_to(sampled.reshape(-1, 1, 1), f.shape)
    return f, np.full(f.shape, make_likelihood(cfg.likelihood).noise_sd)


def _class_columns(f: np.ndarray, family: str, classes: list) -> dict:
    """`p_<class>` per class, `predicted` (the most probable class), `entropy` and
    `mutual_information` of the predictive (`headbayes.report.classify`)."""

    p_mean, draw_entropy = classify.predictive(np.asarray(f), family)
    if p_mean.shape[1] != len(classes):
        raise RunDirError(f"data.json names {len(classes)} classes; the model predicts "
                          f"{p_mean.shape[1]}")
    total = classify.entropy(p_mean)
    return {**{f"p_{name}": p_mean[:, k] for k, name in enumerate(classes)},
            "predicted": np.asarray(classes)[p_mean.argmax(axis=1)],
            "entropy": total, "mutual_information": total - draw_entropy}


def _summaries(f: np.ndarray, replicates: np.ndarray, noise: np.ndarray, variance) -> dict:
    """The columns of `predict` from function draws and noisy replicates (draws, n, out);
    `noise`: the noise scale of each draw (and point), broadcastable to (draws, n, out);
    `variance(noise)`: the noise's variance (the likelihood's `NoisePredictive.variance`)."""
    columns = {}
    for o in range(f.shape[2]):
        prefix = "" if f.shape[2] == 1 else f"{o}_"
        noise_var = np.mean(variance(np.broadcast_to(noise, f.shape)[:, :, o]), axis=0)
        for suffix, values, var in (("", replicates[:, :, o], noise_var),
                                    ("_f", f[:, :, o], 0.0)):
            q05, q50, q95 = np.quantile(values, [0.05, 0.5, 0.95], axis=0)
            columns[f"{prefix}mean{suffix}"] = f[:, :, o].mean(axis=0)
            columns[f"{prefix}sd{suffix}"] = np.sqrt(f[:, :, o].var(axis=0) + var)
            columns.update({f"{prefix}q05{suffix}": q05, f"{prefix}q50{suffix}": q50,
                            f"{prefix}q95{suffix}": q95})
    return columns


def _check_inputs(x: np.ndarray, names: list[str]) -> None:
    """ConfigError unless `x` is (rows >= 1, one column per input) of finite numbers."""
    if x.ndim != 2 or x.shape[1] != len(names):
        raise ConfigError(f"inputs must have one column per input ({', '.join(names)}): shape "
                          f"(rows, {len(names)}), got {x.shape}")
    if len(x) == 0:
        raise ConfigError("inputs have no rows: nothing to predict at")
    if not np.isfinite(x).all():
        raise ConfigError("inputs must be finite numbers (a NaN or an infinity was given)")
    if np.abs(x).max() > FLOAT32_MAX:
        raise ConfigError(f"inputs must be within float32's range (at most {FLOAT32_MAX:.3g} in "
                          f"magnitude; {np.abs(x).max():.3g} was given)")


def read_inputs(run_dir: Path, path: Path, code: tuple = ()) -> tuple[list[str], np.ndarray,
                                                                     list[str]]:
    """(input column names, x, notes) from a csv or npz file holding the run's input columns
    by name, in any order; the target column, when it is there too, is ignored (a note says
    so). ConfigError naming missing or other columns or a non-numeric cell."""

    path = Path(path)
    if path.suffix not in (".csv", ".npz"):
        raise ConfigError(f"--input: {path} must be a .csv or .npz file")
    path = regular_file(str(path), "--input")
    description = data_description(Path(run_dir), load_config(RunFiles(run_dir), code=code))
    names, target = description["inputs"], description["target"]
    if path.suffix == ".npz":
        columns = read_table(path, "npz", "--input")  # a file that is no npz: ConfigError
        with store.open_npz(path) as arrays:
            header = list(arrays.files)
            odd = {c: arrays[c].dtype for c in names
                   if c in header and arrays[c].dtype.kind not in "biuf"}
        if odd:
            raise ConfigError(f"--input: {path}: "
                              + "; ".join(f"column {c} holds {d}, not real numbers"
                                          for c, d in odd.items()))
    else:
        header = list(read_text_table(path, "--input", names_only=True))
    ignored = [target] if target in header and target not in names else []
    missing = [c for c in names if c not in header]
    extra = [c for c in header if c not in names and c not in ignored]
    if missing or extra:
        raise ConfigError(f"--input: {path} must have the training input columns "
                          f"{', '.join(names)} (and may have the target {target}); missing: "
                          f"{', '.join(missing) or 'none'}; other: {', '.join(extra) or 'none'}")
    if path.suffix == ".csv":
        columns = read_table(path, "csv", "--input", only=set(names))
    notes = [f"column {target} of {path} is the run's target: ignored"] if ignored else []
    lengths = {len(columns[c]) for c in names}
    if len(lengths) != 1 or not lengths.pop():
        raise ConfigError(f"--input: the columns of {path} must be non-empty and equally long")
    x = np.stack([columns[c] for c in names], axis=1)
    refuse_non_finite(x, names, f"--input: {path}")
    if np.abs(x).max() > FLOAT32_MAX:
        raise ConfigError(f"--input: {path} holds values beyond float32's range (at most "
                          f"{FLOAT32_MAX:.3g} in magnitude)")
    return names, x, notes


def check_output(path: Path, run_dir: Path | None = None) -> None:
    """ConfigError unless `path` names a .csv or .npz file that is new or a regular file (a
    link, a device, a FIFO or a folder is never replaced) outside `run_dir` (a run's own
    files are never overwritten)."""
    path = Path(path)
    if path.suffix not in (".csv", ".npz"):
        raise ConfigError(f"--output: {path} must end in .csv or .npz (the two formats "
                          f"predict writes)")
    store.check_replaceable(path, "--output")
    if run_dir is not None and path.absolute().resolve().is_relative_to(
            Path(run_dir).absolute().resolve()):
        raise ConfigError(f"--output: {path} lies inside the run directory {run_dir}, whose "
                          f"files predict never replaces; name a file outside it")


def write_table(path: Path, columns: dict) -> None:
    """csv (RFC 4180 quoting), or npz when the name ends in .npz (one array per column);
    written atomically; `path` as `check_output` allows."""
    path = Path(path)
    check_output(path)
    if path.suffix == ".npz":
        store.write_npz(path, {k: np.asarray(v) for k, v in columns.items()})
        return
    names = list(columns)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(names)
    writer.writerows([v if isinstance(v, str) else f"{float(v):.8g}" for v in row]
                     for row in zip(*(columns[n] for n in names)))
    store.write_bytes(path, text.getvalue().encode())
