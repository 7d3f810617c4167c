"""Layer 9: metrics, diagnostics, plots, predict, summarize, export, tracking."""
