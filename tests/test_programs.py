"""The program cache: a compiled program is reused only for a config that gives the same
program (its key covers everything the program closes over)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import equinox as eqx
import numpy as np
import pytest

import headbayes
from headbayes.engine.predictive import function_draws
from headbayes.engine.programs import build_model
from headbayes.models import forward
from headbayes.models.mask import named_leaves
from headbayes.models.skeleton import model_with

_spec = importlib.util.spec_from_file_location(
    "golden", Path(__file__).resolve().parents[1] / "scripts" / "golden.py")
golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(golden)  # golden.chain_digest: the chain's hash, as the golden test's


def test_function_draws_follow_the_adapter_scale_in_one_process():
    """Two LoRA configs differing only in `adapters.alpha`, one after the other in one process:
    each one's function draws are its own model's forward pass (the report's program was once
    keyed without the adapter settings, so the second got the first one's draws)."""
    x = np.linspace(-1, 1, 7, dtype=np.float32)[:, None]
    for alpha in (2.0, 8.0):
        cfg = headbayes.compose(["+experiment=sin_lora", f"adapters.alpha={alpha}"])
        arrays = eqx.filter(build_model(cfg), eqx.is_inexact_array)
        params = {p: np.asarray(v) for p, v in named_leaves(arrays).items()}
        sampled = [p for p in params if p.endswith("lora_b")]
        draw = {p: np.ones_like(params[p]) for p in sampled}
        chain = {p: v[None, None] for p, v in draw.items()}
        got = function_draws(cfg, params, chain, x)[0, 0]
        want = np.asarray(forward(model_with(cfg, {**params, **draw}), x))
        assert np.abs(got - want).max() < 1e-5 * (1 + np.abs(want).max()), alpha


# Every key of the config, changed alone: a config run in this process after another that
# differs from it only in that key gives the figures and the chain a fresh process gives.
SHORT = ["sampler.warmup=20", "sampler.keep=10", "report.plots=false"]
BASES = {
    "frozen": ["+experiment=sin_head"],
    "pretrained": ["+experiment=sin_head", "body=pretrained", "body.steps=50"],
    "lora": ["+experiment=sin_lora"],
    "sampled": ["+experiment=sin_head", "sampler=nuts", "likelihood.sigma=sampled",
                "likelihood.reduction=sum"],
    "student_t": ["+experiment=sin_head", "prior=student_t"],
    "slow_body": ["+experiment=sin_head", "body=pretrained", "body.steps=50", "body.lr=1e-4"],
    "heteroscedastic": ["+experiment=growing_noise_head", "body.steps=50"],
    "nuts": ["+experiment=sin_head_nuts"],
}
CHANGES = {  # key -> (base, the override that changes it)
    "seed": ("frozen", "seed=1"),
    "data.name": ("frozen", "data=sin_shift"),
    "data.n_train": ("frozen", "data.n_train=24"),
    "data.noise_std": ("frozen", "data.noise_std=0.1"),
    "data.seed": ("frozen", "data.seed=1"),
    "data.x_min": ("frozen", "data.x_min=-1.5"),
    "data.x_max": ("frozen", "data.x_max=1.5"),
    "data.eval_step": ("frozen", "data.eval_step=0.05"),
    "data.n_test": ("frozen", "data.n_test=50"),
    "data.frequency": ("lora", "data.frequency=1.5"),
    "data.noise_min": ("heteroscedastic", "data.noise_min=0.05"),
    "data.noise_max": ("heteroscedastic", "data.noise_max=0.3"),
    "data.phase": ("lora", "data.phase=0.2"),
    "body.data.name": ("lora", "body.data.name=sin_shift"),
    "body.data.n_train": ("lora", "body.data.n_train=48"),
    "body.data.noise_std": ("lora", "+body.data.noise_std=0.1"),
    "body.data.seed": ("lora", "+body.data.seed=1"),
    "body.data.x_min": ("lora", "+body.data.x_min=-1.5"),
    "body.data.x_max": ("lora", "+body.data.x_max=1.5"),
    "body.data.eval_step": ("lora", "+body.data.eval_step=0.05"),
    "body.data.n_test": ("lora", "+body.data.n_test=20"),
    "model.name": ("frozen", "model=cnn"),
    "model.in_features": ("frozen", "model.in_features=1"),
    "model.out_features": ("frozen", "model.out_features=1"),
    "model.width": ("frozen", "model.width=8"),
    "model.depth": ("frozen", "model.depth=1"),
    "model.activation": ("frozen", "model.activation=relu"),
    "model.seed": ("frozen", "model.seed=1"),
    "model.cache_features": ("frozen", "model.cache_features=false"),
    "body.mode": ("frozen", "body=joint"),
    "body.optimizer": ("slow_body", "body.optimizer=sgd"),
    "body.lr": ("pretrained", "body.lr=0.02"),
    "body.steps": ("pretrained", "body.steps=60"),
    "body.weight_decay": ("pretrained", "body.weight_decay=0.001"),
    "body.patience": ("pretrained", "body.patience=5"),
    "mask.include": ("frozen", "mask.include=[output_layer.bias]"),
    "mask.exclude": ("frozen", "mask.exclude=[output_layer.bias]"),
    "adapters.targets": ("lora", "adapters.targets=[hidden_layers.0]"),
    "adapters.rank": ("lora", "adapters.rank=1"),
    "adapters.alpha": ("lora", "adapters.alpha=8.0"),
    "adapters.seed": ("lora", "adapters.seed=1"),
    "likelihood.name": ("heteroscedastic", "likelihood=gaussian"),
    "likelihood.sigma": ("frozen", "likelihood.sigma=0.1"),
    "likelihood.reduction": ("nuts", "likelihood.reduction=sum"),
    "likelihood.sigma_prior": ("sampled", "likelihood.sigma_prior=inverse_gamma"),
    "likelihood.sigma_prior_scale": ("sampled", "likelihood.sigma_prior_scale=0.5"),
    "likelihood.sigma_prior_shape": ("sampled", "likelihood.sigma_prior_shape=3.0"),
    "prior.family": ("frozen", "prior=laplace"),
    "prior.sigma": ("frozen", "prior.sigma=3.0"),
    "prior.scale": ("frozen", "prior.scale=fan_in"),
    "prior.center": ("frozen", "prior.center=initial"),
    "prior.df": ("student_t", "prior.df=5.0"),
    "sampler.name": ("frozen", "sampler=mala"),
    "sampler.temperature": ("frozen", "sampler.temperature=0.5"),
    "sampler.warmup": ("frozen", "sampler.warmup=30"),
    "sampler.keep": ("frozen", "sampler.keep=15"),
    "sampler.thin": ("frozen", "sampler.thin=1"),
    "sampler.num_chains": ("frozen", "sampler.num_chains=2"),
    "sampler.init_jitter": ("frozen", "sampler.init_jitter=0.1"),
    "sampler.step_size": ("frozen", "sampler.step_size=0.003"),
    "sampler.batch_size": ("frozen", "sampler.batch_size=8"),
    "sampler.mass_matrix": ("sampled", "sampler.mass_matrix=diagonal"),
    "sampler.mass_init": ("sampled", "sampler.mass_init=hessian"),
    "sampler.target_accept": ("sampled", "sampler.target_accept=0.9"),
    "report.plots": ("frozen", "report.plots=true"),
    "tracking.experiment": ("frozen", "tracking.experiment=other"),
    "tracking.uri": ("frozen", "tracking.uri=file:///nowhere"),
}
# tracking.backend=mlflow logs the finished run to a tracking store: no program reads it
NOT_CHANGED = {"tracking.backend"}
QUICK_KEYS = ("sampler.step_size",)  # adapters.alpha: the function-draws test above, quick

FRESH = """
import sys, headbayes
headbayes.run(headbayes.compose(sys.argv[2:]), sys.argv[1])
"""


def _figures(run_dir) -> tuple[bytes, str]:
    return (run_dir / "metrics.json").read_bytes(), golden.chain_digest(run_dir / "chain")


def _same_in_one_process_as_fresh(key, tmp_path, monkeypatch):
    base, change = CHANGES[key]
    monkeypatch.setenv("HEADBAYES_OUTPUT_DIR", str(tmp_path / "outputs"))
    first = [*BASES[base], *SHORT]
    headbayes.run(headbayes.compose(first), tmp_path / "first")
    headbayes.run(headbayes.compose([*first, change]), tmp_path / "second")
    subprocess.run([sys.executable, "-c", FRESH, str(tmp_path / "fresh"), *first, change],
                   check=True, capture_output=True)
    assert _figures(tmp_path / "second") == _figures(tmp_path / "fresh"), key


def test_every_key_of_the_config_is_changed_by_one_case():
    from headbayes.config.typed import flat_values

    keys = set()
    for overrides in BASES.values():
        keys |= set(flat_values(headbayes.compose([*overrides, *SHORT])))
    assert keys - NOT_CHANGED == set(CHANGES)


@pytest.mark.parametrize("key", QUICK_KEYS)
def test_one_process_gives_a_fresh_process_figures_quick(key, tmp_path, monkeypatch):
    _same_in_one_process_as_fresh(key, tmp_path, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("key", [k for k in CHANGES if k not in QUICK_KEYS])
def test_one_process_gives_a_fresh_process_figures(key, tmp_path, monkeypatch):
    _same_in_one_process_as_fresh(key, tmp_path, monkeypatch)
