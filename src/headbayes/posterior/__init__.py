"""Layer 3: likelihoods, priors, sampled noise and the log density; importing the package
registers every likelihood (the physics one and the `pde` data with it,
`core.registry.discover`)."""

from headbayes.core.registry import discover

discover(__name__)
