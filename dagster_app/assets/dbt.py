"""Every dbt model, seed and snapshot of the project as an asset; dbt tests as asset checks."""

from collections.abc import Iterator
from typing import Any

from dagster import AssetExecutionContext, AssetMaterialization, Output, RetryRequested, get_dagster_logger
from dagster_dbt import DagsterDbtCliRuntimeError, dbt_assets
from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation

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


def with_row_counts(invocation: DbtCliInvocation) -> Iterator[Any]:
    """The invocation's Dagster events, each table's (and seed's) with its `dagster/row_count`, as
    dagster-dbt's `fetch_row_counts()` attaches it; views are not counted (that would run their query).

    Not `fetch_row_counts()` itself: on DuckDB it waits for dbt to exit in a loop that never sleeps (it polls
    an empty work queue), taking one of the machine's cores from dbt for the whole build. Here the events
    are held until dbt exits (DuckDB admits no reader while dbt writes, so they came at the end there too),
    then counted over the in-process adapter's one connection. Events of what dbt built before a failure
    are still yielded, then the failure is raised.
    """
    events: list[Any] = []
    failure: DagsterDbtCliRuntimeError | None = None
    try:
        events.extend(invocation.stream())
    except DagsterDbtCliRuntimeError as error:
        failure = error
    nodes = invocation.manifest["nodes"]
    adapter = invocation.adapter
    for event in events:
        node = (
            nodes.get(event.metadata["unique_id"].text)
            if isinstance(event, (Output, AssetMaterialization))
            else None
        )
        if adapter is not None and node is not None and node["config"]["materialized"] != "view":
            try:
                with adapter.connection_named(f"row_count_{node['unique_id']}"):
                    _, table = adapter.execute(f"select count(*) from {node['relation_name']}", fetch=True)
            except Exception as error:  # a missing count is no reason to fail what dbt built
                get_dagster_logger().warning(f"No row count for {node['unique_id']}: {error}")
            else:
                event = event.with_metadata({**event.metadata, "dagster/row_count": int(table[0][0])})
        yield event
    if failure is not None:
        raise failure


# Unit tests are left out of the production build: their inputs are static fixtures, so every run (and
# the 15-minute refresh) would spend compute proving the same SQL again. dbt's docs recommend running them
# in development and CI; `make test` runs every one of them in a full `dbt build`
# (tests/dbt/test_staging_against_truth.py).
PRODUCTION_BUILD_FLAGS = ("--exclude-resource-type", "unit_test")


@dbt_assets(
    manifest=dbt_manifest,
    project=dbt_project,
    dagster_dbt_translator=PersonalizeDbtTranslator(),
    name="personalize_dbt",
    pool=DUCKDB_POOL,
)
def personalize_dbt(context: AssetExecutionContext, dbt: PersonalizeDbtCliResource) -> Iterator[Any]:
    # `dbt build` runs each model's tests right after it, so a failing error-severity test skips everything
    # downstream within the same invocation. The events reach Dagster when dbt finishes (with_row_counts),
    # while dbt's log lines stream as they come.
    try:
        yield from with_row_counts(dbt.cli(["build", *PRODUCTION_BUILD_FLAGS], context=context))
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
