"""The ML layer: plain Python (no Dagster) so the CLI, the tests and the orchestration call the same code."""
