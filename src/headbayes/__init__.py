"""headbayes: a config-driven runner for partially Bayesian neural networks in JAX.

Public API: `compose(overrides) -> RunConfig`, `run(config, run_dir) -> RunDir`,
`load_run(path) -> RunDir` (`.config`, `.metrics`, `.draws(leaf)`, `.predict(x)`).
"""

from headbayes.core import timing  # noqa: F401  (first: stamps the import time)
from headbayes.app.api import RunDir, compose, load_run, run

__all__ = ["compose", "run", "load_run", "RunDir", "__version__"]

__version__ = "0.1.0"
