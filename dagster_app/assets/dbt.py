"""Every dbt model, seed and snapshot of the project as an asset; dbt tests as asset checks."""

from collections.abc import Iterator
from typing import Any

from dagster import AssetExecutionContext
from dagster_dbt import dbt_assets

from dagster_app.project import dbt_manifest, dbt_project
from dagster_app.resources import PersonalizeDbtCliResource, release_dbt_duckdb
from dagster_app.translator import PersonalizeDbtTranslator


@dbt_assets(
    manifest=dbt_manifest,
    project=dbt_project,
    dagster_dbt_translator=PersonalizeDbtTranslator(),
    name="personalize_dbt",
)
def personalize_dbt(context: AssetExecutionContext, dbt: PersonalizeDbtCliResource) -> Iterator[Any]:
    # `dbt build` runs each model's tests right after it, so a failing error-severity test skips everything
    # downstream within the same invocation. On DuckDB, fetch_row_counts() waits for dbt to exit (dbt holds
    # the only write lock), then counts the rows of tables, not views, over a read-only connection: the
    # events reach Dagster when dbt finishes, while dbt's log lines stream as they come.
    try:
        yield from dbt.cli(["build"], context=context).stream().fetch_row_counts()
    finally:
        release_dbt_duckdb()
        dbt.prune_invocation_dirs()
