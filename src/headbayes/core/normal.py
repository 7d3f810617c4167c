"""Standard normal quantiles shared by the layers (the report, the exact reference, the
likelihoods' predictive checks): plain numbers, no imports."""

__all__ = ["Z_95"]

Z_95 = 1.6448536269514722  # the 95% quantile: the central 90% interval's half width in sd
