"""Tools for tests, benchmarks and local set-ups (not used by the pipeline itself)."""
