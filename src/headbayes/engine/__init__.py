"""Layer 7: the compiled sampling loop, its programs and function draws."""
