"""headbayes: a config-driven runner for partially Bayesian neural networks in JAX.

Public API: `compose(overrides) -> RunConfig`, `run(config, run_dir) -> RunDir`,
`load_run(path) -> RunDir` (`.config`, `.metrics`, `.draws(leaf)`, `.predict(x)`), and
`fit(model, x, y, ...) -> Posterior` (an equinox object and arrays in memory).
"""

import os
import sys

# `python -m headbayes` puts the working directory (perhaps a received run's folder) first on
# the import path; it comes off before anything else is imported
if sys.argv[:1] == ["-m"] and sys.path[:1] in ([""], [os.getcwd()]):
    del sys.path[0]

from headbayes.core import timing  # noqa: E402,F401  (first: stamps the import time)
from headbayes.app.api import RunDir, compose, load_run, run  # noqa: E402
from headbayes.app.fit import Posterior, fit  # noqa: E402

__all__ = ["compose", "run", "load_run", "fit", "RunDir", "Posterior", "__version__"]

__version__ = "0.1.0"
