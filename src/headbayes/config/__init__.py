"""Layer 6: composing, typing and validating a run's config."""
