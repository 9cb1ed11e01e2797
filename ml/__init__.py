"""The ML layer: plain Python (no Dagster) so the CLI, the tests and the orchestration call the same code."""

import os

# XGBoost's OpenMP threads spin while they wait for work by default. On a shared two-core machine the
# spinning threads steal the cores the working ones need: small fits ran 8x slower in our measurements.
# Passive waiting costs next to nothing on large fits. libgomp reads this once, when xgboost loads, so it
# is set here, before any ml module imports xgboost; an explicit setting by the user wins.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")
