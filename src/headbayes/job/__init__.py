"""Layer 8: one run from config to chain: plan, bodies, the job's stages."""
