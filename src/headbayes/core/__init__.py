"""Layer 0: errors, checks, registries, run-directory files, timing, XLA options."""
