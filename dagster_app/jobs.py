"""Asset jobs. Every job runs in-process (see definitions.py), so steps that write DuckDB never overlap."""

from dagster import AssetSelection, define_asset_job

from dagster_app.assets.raw import raw_landing_zone

FULL_BUILD_JOB_NAME = "full_build"

full_build = define_asset_job(
    FULL_BUILD_JOB_NAME,
    # AssetSelection.all() leaves out observable sources. Observing the landing zone in the same run records
    # which raw files each build read, which is what makes Dagster flag the build stale when files change.
    selection=AssetSelection.all() | AssetSelection.assets(raw_landing_zone),
    description="Observe the landing zone, then build every asset and run its checks (dbt tests included).",
)
