"""Layer 10: the command line, the Hydra task, the Python API, the console."""
