"""headbayes: a config-driven runner for partially Bayesian neural networks in JAX."""

__version__ = "0.1.0"
