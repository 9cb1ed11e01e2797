"""The Dagster code location: `dagster dev -m dagster_app.definitions`."""

from __future__ import annotations

from dagster import Definitions, in_process_executor, load_assets_from_package_module

from dagster_app import assets
from dagster_app.checks import every_raw_row_accounted_for, model_checks
from dagster_app.jobs import frequent_refresh, full_build
from dagster_app.resources import build_resources
from dagster_app.schedules import daily_full_build, every_15_minutes_refresh
from dagster_app.sensors import declarative_automation, raw_files_sensor

defs = Definitions(
    assets=load_assets_from_package_module(assets),
    asset_checks=[every_raw_row_accounted_for, *model_checks],
    jobs=[full_build, frequent_refresh],
    schedules=[daily_full_build, every_15_minutes_refresh],
    sensors=[raw_files_sensor, declarative_automation],
    resources=build_resources(),
    # DuckDB admits a single writing process: running every step of a run in one process means materializing
    # everything never fails with "Could not set lock", and skips a process start per step. Runs wait for
    # each other through the instance settings in dagster_app/instance.py.
    executor=in_process_executor,
)
