"""The whole graph builds in-process on a tiny landing zone and reports what it built."""

import duckdb
import pytest
from dagster import AssetCheckKey, AssetCheckSeverity, AssetKey, DagsterEventType, DagsterInstance

QUALITY_MODEL = AssetKey(["quality", "quality_raw_row_counts"])
RECONCILIATION_CHECK = AssetCheckKey(
    AssetKey(["quality", "quality_source_reconciliation"]), "every_raw_row_accounted_for"
)
WEB_EVENTS_HEADER = [
    "event_id", "anonymous_id", "user_id", "event_type", "product_id", "url", "search_query", "user_agent",
    "event_at", "received_at",
]  # fmt: skip
NEW_WEB_EVENTS = [
    ["e-1", "anon-1", "c-1", "page_view", "", "https://shop.example/", "", "Mozilla/5.0",
     "2024-03-09T10:00:00Z", "2024-03-09T10:00:01Z"],
    # A broken device clock: held back as future_dated, but loaded.
    ["e-2", "anon-2", "", "page_view", "", "https://shop.example/", "", "Mozilla/5.0",
     "2030-01-01T00:00:00Z", "2024-03-09T11:00:00Z"],
]  # fmt: skip


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as instance:
        yield instance


def _raw_rows(duckdb_path) -> dict[str, int]:
    with duckdb.connect(str(duckdb_path), read_only=True) as connection:
        return dict(
            connection.sql("select source_name, raw_rows from quality.quality_raw_row_counts").fetchall()
        )


def _metadata(event) -> dict:
    return {key: value.value for key, value in event.asset_materialization.metadata.items()}


def test_full_build_materializes_everything(defs, data_paths, instance) -> None:
    from dagster_app.checks import every_raw_row_accounted_for
    from tests.conftest import write_csv

    result = defs.resolve_job_def("full_build").execute_in_process(instance=instance)
    assert result.success

    # Later steps of the same in-process run (Python assets writing scores) can open the warehouse for
    # writing: the dbt adapter that dagster-dbt used for row counts has let go of it.
    with defs.resources["duckdb"].get_connection() as connection:
        connection.execute("create or replace table main.after_build as select 1 as ok")

    # Four order versions and two CRM records were delivered; every other source is absent and counts zero.
    rows = _raw_rows(data_paths.duckdb_path)
    assert rows["shop_orders"] == 4
    assert rows["crm_customers"] == 2
    assert len(rows) == 8 and sum(rows.values()) == 6

    graph = defs.resolve_asset_graph()
    materializable = {key for key in graph.get_all_asset_keys() if graph.get(key).is_materializable}
    materialized = {event.asset_key for event in result.get_asset_materialization_events()}
    assert materialized == materializable

    # Row counts for tables (dbt's own seeds included).
    quality = instance.get_latest_materialization_event(QUALITY_MODEL)
    assert _metadata(quality)["dagster/row_count"] == 8
    fx_rates = instance.get_latest_materialization_event(AssetKey(["seeds", "fx_rates"]))
    assert _metadata(fx_rates)["dagster/row_count"] > 0

    # dbt tests ran as asset checks, and all passed.
    evaluations = [
        event.event_specific_data
        for event in result.all_events
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    assert len(evaluations) == len(list(graph.asset_check_keys))
    assert all(evaluation.passed for evaluation in evaluations)

    # The Python reconciliation check ran with them, and shows the counts of every source.
    [reconciled] = [e for e in evaluations if e.asset_check_key == RECONCILIATION_CHECK]
    assert reconciled.metadata["sources"].value == 8
    assert reconciled.metadata["unbalanced_sources"].value == "none"
    assert graph.get_check_spec(RECONCILIATION_CHECK).blocking
    # A source that lost a row fails it, naming the source.
    with defs.resources["duckdb"].get_connection() as connection:
        connection.execute(
            "update quality.quality_source_reconciliation set difference = 1"
            " where source_name = 'shop_orders'"
        )
    broken = every_raw_row_accounted_for(duckdb=defs.resources["duckdb"])
    assert not broken.passed and broken.severity == AssetCheckSeverity.ERROR
    assert broken.metadata["unbalanced_sources"].value == "shop_orders"

    # The landing zone was observed in the same run, with a data version per source.
    orders = instance.fetch_observations(AssetKey(["raw", "shop_orders"]), limit=1).records[0]
    observation = orders.asset_observation
    assert observation.metadata["file_count"].value == 1
    assert (
        observation.metadata["bytes"].value
        == (data_paths.raw_dir / "shop_orders" / "orders_2024_03.csv").stat().st_size
    )
    assert observation.tags["dagster/data_version"]
    web = instance.fetch_observations(AssetKey(["raw", "web_events"]), limit=1).records[0].asset_observation
    assert web.metadata["file_count"].value == 0

    # Between daily builds, the 15-minute refresh loads new events into the built warehouse (it reads models,
    # like the product catalogue, that it does not rebuild). Here rather than in a test of its own, to save a
    # full build.
    write_csv(data_paths.raw_dir / "web_events" / "events_2024_03_09.csv", WEB_EVENTS_HEADER, NEW_WEB_EVENTS)
    refresh = defs.resolve_job_def("frequent_refresh").execute_in_process(instance=instance)
    assert refresh.success
    refreshed = {event.asset_key for event in refresh.get_asset_materialization_events()}
    assert {AssetKey(["staging", "base_web__events"]), AssetKey(["staging", "stg_data_clock"])} <= refreshed
    assert AssetKey(["marts", "customer_360"]) not in refreshed, "heavy marts wait for the daily build"
    with duckdb.connect(str(data_paths.duckdb_path), read_only=True) as connection:
        loaded = connection.sql("select count(*) from staging.base_web__events").fetchall()[0][0]
        clean = connection.sql("select event_id from staging.stg_web__events").fetchall()
    assert loaded == 2
    assert clean == [("e-1",)]


def test_new_raw_files_change_the_observed_data_version(defs, data_paths, instance) -> None:
    from dagster import materialize

    from dagster_app.assets.raw import raw_landing_zone

    def observe_orders() -> str:
        result = materialize(
            [raw_landing_zone], instance=instance, selection=[AssetKey(["raw", "shop_orders"])]
        )
        assert result.success
        record = instance.fetch_observations(AssetKey(["raw", "shop_orders"]), limit=1).records[0]
        return record.asset_observation.tags["dagster/data_version"]

    before = observe_orders()
    assert observe_orders() == before
    header = (data_paths.raw_dir / "shop_orders" / "orders_2024_03.csv").read_text().splitlines()[0]
    (data_paths.raw_dir / "shop_orders" / "orders_2024_04.csv").write_text(header + "\n")
    assert observe_orders() != before


def test_a_file_missing_a_required_column_fails_the_run_naming_the_file(defs, data_paths, instance) -> None:
    bad = data_paths.raw_dir / "shop_orders" / "broken_export.csv"
    bad.write_text("order_id,customer_id,email\no-9,c-9,x@example.com\n")
    result = defs.resolve_job_def("full_build").execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    failures = [event for event in result.all_events if event.event_type == DagsterEventType.STEP_FAILURE]
    assert [event.step_key for event in failures] == ["personalize_dbt"]
    assert not [e for e in result.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY], (
        "a broken file is not a transient failure: no retry"
    )
    message = str(failures[0].event_specific_data.error)
    assert "broken_export.csv" in message and "status" in message, message
    assert not result.get_asset_materialization_events(), "nothing may look built after a failed load"
