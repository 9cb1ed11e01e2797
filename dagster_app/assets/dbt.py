"""Every dbt model, seed and snapshot of the project as an asset; dbt tests as asset checks."""

from collections.abc import Iterator
from typing import Any

from dagster import AssetExecutionContext, RetryRequested
from dagster_dbt import DagsterDbtCliRuntimeError, dbt_assets

from dagster_app.instance import DUCKDB_POOL
from dagster_app.project import dbt_manifest, dbt_project
from dagster_app.resources import PersonalizeDbtCliResource, release_dbt_duckdb
from dagster_app.translator import PersonalizeDbtTranslator

# Failures that say nothing about the project or the data, only that another process held the warehouse at
# that moment (a notebook, the dbt CLI, a run of another Dagster instance): worth trying again after a pause.
TRANSIENT_DBT_ERRORS = ("Could not set lock on file", "database is locked")
TRANSIENT_RETRIES = 3
TRANSIENT_RETRY_SECONDS = 15


def is_transient_dbt_failure(error: BaseException) -> bool:
    return any(marker in str(error) for marker in TRANSIENT_DBT_ERRORS)


@dbt_assets(
    manifest=dbt_manifest,
    project=dbt_project,
    dagster_dbt_translator=PersonalizeDbtTranslator(),
    name="personalize_dbt",
    pool=DUCKDB_POOL,
)
def personalize_dbt(context: AssetExecutionContext, dbt: PersonalizeDbtCliResource) -> Iterator[Any]:
    # `dbt build` runs each model's tests right after it, so a failing error-severity test skips everything
    # downstream within the same invocation. On DuckDB, fetch_row_counts() waits for dbt to exit (dbt holds
    # the only write lock), then counts the rows of tables, not views, over a read-only connection: the
    # events reach Dagster when dbt finishes, while dbt's log lines stream as they come.
    try:
        yield from dbt.cli(["build"], context=context).stream().fetch_row_counts()
    except DagsterDbtCliRuntimeError as error:
        # Only a locked warehouse is retried. A failing test or a broken model fails the same way every time,
        # so a RetryPolicy on every error would just run the build again for nothing.
        if is_transient_dbt_failure(error):
            raise RetryRequested(
                max_retries=TRANSIENT_RETRIES, seconds_to_wait=TRANSIENT_RETRY_SECONDS
            ) from error
        raise
    finally:
        release_dbt_duckdb()
        dbt.prune_invocation_dirs()
