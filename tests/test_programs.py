"""The program cache: a compiled program is reused only for a config that gives the same
program (its key covers everything the program closes over)."""

import equinox as eqx
import numpy as np

import headbayes
from headbayes.models.mask import named_leaves
from headbayes.engine.programs import build_model
from headbayes.models import forward
from headbayes.engine.predictive import function_draws
from headbayes.models.skeleton import model_with


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
