"""The XLA compile options of headbayes' programs, and the `jit`s that pass them.

On the CPU the chunk program (`headbayes.engine.runner`) and joint training's program are compiled
with XLA's older (non-MLIR) fusion emitters (`xla_cpu_use_fusion_emitters: False`): on
`sin_head_nuts` that takes the loop's compile from about 2.5 s to 1.5 s, with the same draws bit
for bit (`docs/benchmarks.md`, "Compile options"). Elsewhere the two emitters may round a fused
expression differently in the last bit, which a chain can amplify: the draws are then as valid but
not those of XLA's defaults.

The model's initial values are computed once per run by a program that XLA compiles for longer
than it runs: `jit_once` compiles it with the same emitters and LLVM's optimisation level 1
(`ONCE_OPTIONS`), about 0.5 s → 0.25 s for the seed's MLP on a 2-core CPU, bit for bit the
values of XLA's defaults for every shipped experiment's model (checked by
`tests/test_model_data.py`). The report's function draws (`headbayes.engine.predictive`, compiled
once per job) use them too: bit for bit through dense layers, within float32's last bits through
convolutions (`tests/test_xla.py`); no chain amplifies those. The programs whose values feed the
chain (the frozen features, a linear head's statistics, the chains' jittered start) keep XLA's
defaults: at `ONCE_OPTIONS` their last bits differ, and the chain amplifies that.

Other backends, an XLA that no longer knows the options, and `HEADBAYES_XLA_DEFAULTS=1` (the
benchmarks' baseline) compile with XLA's defaults. The options are part of the persistent
compilation cache's key; a run and its resume compile alike.
"""

import functools
from headbayes.core.settings import settings

__all__ = ["CPU_OPTIONS", "ONCE_OPTIONS", "compiler_options", "jit", "jit_once"]

CPU_OPTIONS = {"xla_cpu_use_fusion_emitters": False}
ONCE_OPTIONS = {**CPU_OPTIONS, "xla_backend_optimization_level": 1}


@functools.cache
def compiler_options(once: bool = False) -> dict:
    """`CPU_OPTIONS` (with `once`: `ONCE_OPTIONS`) where JAX's default backend is the CPU and
    its XLA knows them, else {} (XLA's defaults); looked up once per process."""
    import jax

    if settings().xla_defaults or jax.default_backend() != "cpu":
        return {}
    options = dict(ONCE_OPTIONS if once else CPU_OPTIONS)
    try:  # an XLA without an option refuses it by name; then its defaults serve
        jax.jit(lambda: 0, compiler_options=options).lower().compile()
    except Exception:  # noqa: BLE001 (jaxlib's error type has moved between releases)
        return {}
    return options


def jit(fn, **kwargs):
    """`jax.jit(fn, **kwargs)` compiled with `compiler_options()`: the sampling loop's."""
    import jax

    return jax.jit(fn, compiler_options=compiler_options(), **kwargs)


def jit_once(fn, **kwargs):
    """`jax.jit(fn, **kwargs)` compiled with `ONCE_OPTIONS`: a program run once per job."""
    import jax

    return jax.jit(fn, compiler_options=compiler_options(once=True), **kwargs)
