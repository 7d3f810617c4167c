"""Every environment variable headbayes reads, in one place (docs/performance.md lists them).

`settings()` reads them afresh on each call (cheap; a test or a notebook may change them
between runs); no other module reads `os.environ`.
"""

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Settings", "settings"]


@dataclass(frozen=True)
class Settings:
    output_dir: Path  # HEADBAYES_OUTPUT_DIR (default outputs): runs, sweeps, caches, mlflow.db
    compile_cache: Path | None  # HEADBAYES_COMPILE_CACHE ("": off); default output_dir/jax_cache
    compile_cache_set: bool  # HEADBAYES_COMPILE_CACHE is set (headbayes.fit uses no cache else)
    plot_worker: bool  # HEADBAYES_PLOT_WORKER=0 draws plots in-process
    xla_defaults: bool  # HEADBAYES_XLA_DEFAULTS=1: XLA's own compile options everywhere
    debug: bool  # HEADBAYES_DEBUG (any non-empty value): tracebacks instead of one line
    mlflow_uri: str  # MLFLOW_TRACKING_URI ("" when unset)
    pythonpath: tuple[str, ...]  # PYTHONPATH entries: where a user's model may be imported from
    columns_set: bool  # COLUMNS set: the console keeps the width it gives
    source_key: Path  # HEADBAYES_SOURCE_KEY (default ~/.config/headbayes/source-key): this
    # account's key, which signs the model source digests of its runs (models.code)


def settings() -> Settings:
    env = os.environ
    output_dir = Path(env.get("HEADBAYES_OUTPUT_DIR", "outputs"))
    cache = env.get("HEADBAYES_COMPILE_CACHE")
    compile_cache = output_dir / "jax_cache" if cache is None else (Path(cache) if cache else None)
    return Settings(
        output_dir=output_dir,
        compile_cache=compile_cache,
        compile_cache_set=cache is not None,
        plot_worker=env.get("HEADBAYES_PLOT_WORKER") != "0",
        xla_defaults=env.get("HEADBAYES_XLA_DEFAULTS") == "1",
        debug=bool(env.get("HEADBAYES_DEBUG")),
        mlflow_uri=env.get("MLFLOW_TRACKING_URI", ""),
        pythonpath=tuple(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p),
        columns_set="COLUMNS" in env,
        source_key=Path(env.get("HEADBAYES_SOURCE_KEY")
                        or Path.home() / ".config" / "headbayes" / "source-key"),
    )
