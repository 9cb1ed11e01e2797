"""Asset jobs. Every job runs in-process (see definitions.py), so steps that write DuckDB never overlap."""

from dagster import AssetSelection, define_asset_job
from dagster_dbt import build_dbt_asset_selection

from dagster_app.assets.dbt import personalize_dbt
from dagster_app.assets.raw import raw_landing_zone
from dagster_app.translator import FREQUENT_REFRESH_TAG

FULL_BUILD_JOB_NAME = "full_build"
FREQUENT_REFRESH_JOB_NAME = "frequent_refresh"
ACTIVATION_GROUP = "activation"

full_build = define_asset_job(
    FULL_BUILD_JOB_NAME,
    # AssetSelection.all() leaves out observable sources. Observing the landing zone in the same run records
    # which raw files each build read, which is what makes Dagster flag the build stale when files change.
    selection=AssetSelection.all() | AssetSelection.assets(raw_landing_zone),
    description="Observe the landing zone, then build every asset and run its checks (dbt tests included).",
)

# Chosen by dbt tag, so a model added under marts/personalization/ or activation/ joins the refresh without
# a change here (the tag is set per folder in dbt_project.yml).
frequent_refresh_models = build_dbt_asset_selection(
    [personalize_dbt], dbt_select=f"tag:{FREQUENT_REFRESH_TAG}"
)
frequent_refresh_selection = (
    frequent_refresh_models
    # The landing folders they are built from, observed (a file listing) so the run records what it read.
    | frequent_refresh_models.upstream_source_assets()
    # Python assets that deliver the activation models (the ESP syncs) follow them.
    | (frequent_refresh_models.downstream() & AssetSelection.groups(ACTIVATION_GROUP))
)

frequent_refresh = define_asset_job(
    FREQUENT_REFRESH_JOB_NAME,
    selection=frequent_refresh_selection,
    description=(
        f"Load new web and ESP events (incremental), then rebuild the dbt models tagged "
        f"`{FREQUENT_REFRESH_TAG}` (triggers, audience) and the activation assets after them."
    ),
)
