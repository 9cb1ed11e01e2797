"""The Dagster code location: `dagster dev -m dagster_app.definitions`."""

from __future__ import annotations

from dagster import Definitions, in_process_executor, load_assets_from_package_module

from dagster_app import assets
from dagster_app.jobs import full_build
from dagster_app.resources import build_resources
from dagster_app.schedules import daily_full_build

defs = Definitions(
    assets=load_assets_from_package_module(assets),
    jobs=[full_build],
    schedules=[daily_full_build],
    resources=build_resources(),
    # DuckDB admits a single writing process: running every step of a run in one process means materializing
    # everything never fails with "Could not set lock", and skips a process start per step.
    executor=in_process_executor,
)
