"""Layer 4: closed-form and linearised references, learned scales."""
