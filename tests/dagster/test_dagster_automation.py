"""Automation without building anything: the 15-minute refresh selection, schedules, the raw-files sensor,
the eager conditions the translator sets, and the instance settings that keep DuckDB to one writer."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest
import yaml

from dagster_app.instance import DUCKDB_POOL, ensure_instance_config

key = dg.AssetKey.from_user_string
FREQUENT = {
    key("staging/base_web__events"),
    key("staging/base_esp__events"),
    key("staging/stg_web__events"),
    key("staging/stg_esp__events"),
    key("staging/stg_data_clock"),
    key("staging/stg_landing_files"),
}


@pytest.fixture(scope="module")
def graph(defs):
    return defs.resolve_asset_graph()


def _job_assets(defs, name: str) -> set[dg.AssetKey]:
    job_graph = defs.resolve_job_def(name).asset_layer.asset_graph
    return {k for k in job_graph.get_all_asset_keys() if job_graph.get(k).is_executable}


def test_frequent_refresh_takes_the_tagged_event_models_and_their_landing_folders(defs, graph) -> None:
    selected = _job_assets(defs, "frequent_refresh")
    assert selected >= FREQUENT
    assert {key("raw/web_events"), key("raw/esp_events")} <= selected, "it observes what it reads"
    # Heavy or unrelated models wait for the daily build.
    for heavy in ("marts/customer_360", "staging/stg_shop__orders", "intermediate/int_identity_map"):
        assert key(heavy) not in selected, heavy
    # Every dbt model in the job carries the tag, so a model added under activation/ joins by its folder.
    # The ESP syncs (Python assets of the activation group) deliver what the refresh rebuilt.
    assert key("esp/file_sync") in selected
    for asset_key in selected - {k for k in selected if k.path[0] in ("raw", "esp")}:
        assert "frequent_refresh" in graph.get(asset_key).tags, asset_key
    assert defs.resolve_job_def("frequent_refresh").executor_def.name == "in_process"


def test_schedules_and_sensors_start_switched_off(defs) -> None:
    refresh = defs.resolve_schedule_def("every_15_minutes_refresh")
    assert refresh.job_name == "frequent_refresh"
    assert refresh.cron_schedule == "7,22,37,52 * * * *"
    assert refresh.default_status == dg.DefaultScheduleStatus.STOPPED
    assert defs.resolve_schedule_def("daily_full_build").default_status == dg.DefaultScheduleStatus.STOPPED
    for name in ("raw_files_sensor", "declarative_automation"):
        assert defs.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.STOPPED, name


def test_automation_conditions_set_by_the_translator(graph) -> None:
    for asset_key in graph.get_all_asset_keys():
        node = graph.get(asset_key)
        condition = node.automation_condition
        if node.group_name in {"raw", "seeds", "snapshots", "staging"}:
            assert condition is None, asset_key
        else:
            assert condition is not None and condition.get_label() == "eager", asset_key
    # Every step that opens the warehouse waits for the single slot of the duckdb pool.
    assert graph.get(key("marts/customer_360")).pools == {DUCKDB_POOL}


def _report(instance: dg.DagsterInstance, keys) -> None:
    for asset_key in keys:
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key))


def test_eager_models_follow_upstream_updates_except_the_frequent_refresh(defs, graph) -> None:
    materializable = {k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable}
    with dg.DagsterInstance.ephemeral() as instance:
        _report(instance, materializable)
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert first.total_requested == 0, "everything is up to date"

        # Orders were rebuilt (say from the UI): identity, marts and quality follow.
        _report(instance, [key("staging/stg_shop__orders"), key("staging/stg_shop__order_versions")])
        second = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
        requested = {k for k in materializable if second.get_num_requested(k)}
        assert {
            key("intermediate/int_identity_edges"),
            key("marts/customer_360"),
            key("marts/customer_rfm"),
            key("quality/quality_source_reconciliation"),
        } <= requested
        assert not {k for k in requested if graph.get(k).group_name == "staging"}

        # The 15-minute refresh rebuilt the web events: the heavy models downstream do not follow; only what
        # the refresh itself covers (the tagged models and the ESP syncs after them) may.
        _report(instance, requested)
        third = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=second.cursor)
        assert third.total_requested == 0
        _report(instance, FREQUENT)
        fourth = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=third.cursor)
        followed = {k for k in materializable if fourth.get_num_requested(k)}
        assert followed <= _job_assets(defs, "frequent_refresh"), followed
        assert not followed & {key("marts/customer_360"), key("marts/customer_rfm"), key("ml/churn_model")}


def _evaluate_sensor(defs, instance, cursor: str | None = None):
    sensor = defs.resolve_sensor_def("raw_files_sensor")
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
    return sensor.evaluate_tick(context)


def _evaluate_settled(defs, instance, cursor: str | None = None):
    """Two ticks: the first sees a change and waits, the second finds the folders as the first left them."""
    waiting = _evaluate_sensor(defs, instance, cursor)
    assert not waiting.run_requests and "Waiting a tick for" in waiting.skip_message
    return _evaluate_sensor(defs, instance, waiting.cursor)


def test_raw_files_sensor_builds_what_new_files_feed(defs, graph, data_paths) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        first = _evaluate_settled(defs, instance)
        [request] = first.run_requests
        selected = set(request.asset_selection)
        # The tiny landing zone has orders and CRM files; the absent sources are not news.
        assert {key("raw/shop_orders"), key("raw/crm_customers")} <= selected
        assert key("raw/web_events") not in selected
        assert {key("staging/stg_shop__orders"), key("marts/customer_360")} <= selected
        assert request.tags["personalize/changed_sources"] == "crm_customers,shop_orders"
        # The request is a valid subset of the sensor's job (observable raw assets included).
        subset = defs.resolve_job_def("full_build").get_subset(asset_selection=selected)
        assert subset.asset_layer.asset_graph.get(key("raw/shop_orders")).is_observable

        again = _evaluate_sensor(defs, instance, first.cursor)
        assert not again.run_requests and again.skip_message

        # A web events file lands: only what it feeds is built, and the orders are left alone.
        header = (
            "event_id,anonymous_id,user_id,event_type,product_id,url,search_query,user_agent,event_at,"
            "received_at"
        )
        web = data_paths.raw_dir / "web_events" / "events_2024_03_05.csv"
        web.parent.mkdir()
        web.write_text(header + "\n")
        # Still being written: each tick sees it grow, and nothing is built until one finds it as it was.
        settling = _evaluate_sensor(defs, instance, again.cursor)
        assert not settling.run_requests and "Waiting a tick for: web_events" in settling.skip_message
        web.write_text(
            header + "\n" + "e1,a1,,page_view,,https://shop.example.com/,,ua,2024-03-05T10:00:00Z,\n"
        )
        grown = _evaluate_sensor(defs, instance, settling.cursor)
        assert not grown.run_requests and "Waiting a tick for: web_events" in grown.skip_message
        third = _evaluate_sensor(defs, instance, grown.cursor)
        [request] = third.run_requests
        selected = set(request.asset_selection)
        assert {
            key("raw/web_events"),
            key("staging/base_web__events"),
            key("staging/stg_web__events"),
        } <= selected
        assert not {key("raw/shop_orders"), key("staging/stg_shop__orders")} & selected
        assert request.run_key != first.run_requests[0].run_key

        # A rewritten file is news too (a tick later).
        stat = web.stat()
        os.utime(web, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        assert _evaluate_settled(defs, instance, third.cursor).run_requests


def test_raw_files_sensor_trusts_the_last_observation_of_the_landing_zone(defs, data_paths) -> None:
    from dagster_app.assets.raw import raw_landing_zone

    with dg.DagsterInstance.ephemeral() as instance:
        # A full build already observed these files: switching the sensor on does not rebuild them.
        observed = dg.materialize(
            [raw_landing_zone], instance=instance, selection=list(raw_landing_zone.keys)
        )
        assert observed.success
        result = _evaluate_sensor(defs, instance)
        assert not result.run_requests and result.skip_message

        # The sensor is switched off, a file lands and the daily build reads it; switched on again, the
        # sensor's cursor is from before that build, and the build is not repeated.
        stale_cursor = result.cursor
        orders = next((data_paths.raw_dir / "shop_orders").iterdir())
        (orders.parent / "orders_more.csv").write_text(orders.read_text())
        assert dg.materialize(
            [raw_landing_zone], instance=instance, selection=list(raw_landing_zone.keys)
        ).success
        result = _evaluate_sensor(defs, instance, stale_cursor)
        assert not result.run_requests and result.skip_message


def test_instance_settings_queue_runs_one_at_a_time(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: true\nlocal_artifact_storage:\n  module: x\n")
    path = ensure_instance_config(home)
    config = yaml.safe_load(path.read_text())
    assert config["telemetry"] == {"enabled": False}
    assert config["local_artifact_storage"] == {"module": "x"}, "other settings are kept"
    written = path.stat().st_mtime_ns
    ensure_instance_config(home)
    assert path.stat().st_mtime_ns == written, "idempotent"

    del config["local_artifact_storage"]
    path.write_text(yaml.safe_dump(config))
    with dg.instance_for_test(temp_dir=str(home), overrides=config) as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        concurrency = instance.get_concurrency_config()
        assert concurrency.run_queue_config.max_concurrent_runs == 1
        assert concurrency.pool_config.default_pool_limit == 1
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
