"""The XLA compile options of the sampling loop's programs, and `jit` that passes them.

On the CPU the chunk program (`headbayes.runner`) and joint training's program are compiled with
XLA's older (non-MLIR) fusion emitters (`xla_cpu_use_fusion_emitters: False`): on
`sin_head_nuts` that takes the loop's compile from about 2.5 s to 1.5 s, with the same draws
bit for bit (`docs/benchmarks.md`, "Compile options"). Elsewhere the two emitters may round a
fused expression differently in the last bit, which a chain can amplify: the draws are then as
valid but not those of XLA's defaults. The other, small programs keep XLA's defaults. Other
backends, an XLA that no longer knows the option, and `HEADBAYES_XLA_DEFAULTS=1` (the
benchmarks' baseline) compile with XLA's defaults. The options are part of the persistent
compilation cache's key; a run and its resume compile alike.
"""

import functools
import os

__all__ = ["CPU_OPTIONS", "compiler_options", "jit"]

CPU_OPTIONS = {"xla_cpu_use_fusion_emitters": False}


@functools.cache
def compiler_options() -> dict:
    """The options for the loop's programs on JAX's default backend ({}: XLA's defaults);
    looked up once per process."""
    import jax

    if os.environ.get("HEADBAYES_XLA_DEFAULTS") == "1" or jax.default_backend() != "cpu":
        return {}
    try:  # an XLA without the option refuses it by name; then its defaults serve
        jax.jit(lambda: 0, compiler_options=CPU_OPTIONS).lower().compile()
    except Exception:  # noqa: BLE001 (jaxlib's error type has moved between releases)
        return {}
    return dict(CPU_OPTIONS)


def jit(fn, **kwargs):
    """`jax.jit(fn, **kwargs)` compiled with `compiler_options()`."""
    import jax

    return jax.jit(fn, compiler_options=compiler_options(), **kwargs)
