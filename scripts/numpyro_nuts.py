"""Baseline for `make bench`: the posterior of `sin_head_nuts` sampled by a NumPyro script.

The seed's data and frozen random body (the 1-16-16-1 tanh MLP, initialised as
`scripts/minimal_sgld.py` and headbayes do), its 17 head numbers with the Gaussian prior
(sd 10) and the `reduction: mean` likelihood −mean(r²), r = (f − y) / 0.05, written as a
NumPyro model; NUTS with a dense mass matrix, 4 chains (vectorised) × 1000 draws after 500
warmup steps. Prints the bulk ESS (headbayes' estimator) and the wall time as JSON. NumPyro is a
benchmark-only dependency: `pip install 'headbayes[bench]'`.
"""

import json
import sys
import time
from pathlib import Path

START = time.perf_counter()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import numpyro  # noqa: E402
import numpyro.distributions as dist  # noqa: E402
from numpyro.infer import MCMC, NUTS  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from minimal_sgld import SIGMA, PRIOR_SIGMA, body, setup  # noqa: E402

CHAINS, WARMUP, DRAWS = 4, 500, 1000


def model(phi, y):
    w = numpyro.sample("w", dist.Normal(0.0, PRIOR_SIGMA).expand([phi.shape[1]]).to_event(1))
    b = numpyro.sample("b", dist.Normal(0.0, PRIOR_SIGMA))
    residual = (phi @ w + b - y) / SIGMA
    numpyro.factor("likelihood", -jnp.mean(residual**2))


def main() -> None:
    numpyro.set_host_device_count(1)
    _, (x, y), _, hidden = setup()
    phi = body(hidden, jnp.asarray(x))
    mcmc = MCMC(NUTS(model, dense_mass=True, target_accept_prob=0.8), num_warmup=WARMUP,
                num_samples=DRAWS, num_chains=CHAINS, chain_method="vectorized",
                progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0), phi, jnp.asarray(y[:, 0]))
    samples = mcmc.get_samples(group_by_chain=True)
    draws = np.concatenate([np.asarray(samples["w"]), np.asarray(samples["b"])[..., None]],
                           axis=2)
    wall = time.perf_counter() - START
    from headbayes.report.diagnostics import ess_bulk

    print(json.dumps({"ess_bulk_min": float(np.min(ess_bulk(draws))), "wall_s": wall}))


if __name__ == "__main__":
    main()
