"""Layer 3: likelihoods, priors, sampled noise and the log density."""
