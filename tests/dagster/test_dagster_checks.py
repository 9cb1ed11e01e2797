"""Checks and retries on real dbt runs over the tiny landing zone: a failing error-severity dbt test stops
what is downstream of it, and a warehouse locked by another process is retried rather than failed. (The
reconciliation check is exercised on the full build in test_dagster_materialize.py.)"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import dagster as dg
import duckdb
import pytest

key = dg.AssetKey.from_user_string
CLOCK = key("staging/stg_data_clock")
LANDING_FILES = key("staging/stg_landing_files")
WEB_BASE = key("staging/base_web__events")
WEB_STAGING = key("staging/stg_web__events")


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def _events(result, event_type: dg.DagsterEventType) -> list:
    return [event for event in result.all_events if event.event_type == event_type]


def _build(defs, instance, keys, **kwargs):
    job = defs.resolve_job_def("full_build")
    return job.execute_in_process(instance=instance, asset_selection=list(keys), **kwargs)


# Another process (a notebook, the dbt CLI) holding the only write lock until told to let go.
LOCK_HOLDER = """
import sys, duckdb
connection = duckdb.connect(sys.argv[1])
print("locked", flush=True)
sys.stdin.readline()
"""
LOCK_TIMEOUT_SECONDS = 300


def _release_after_first_retry(instance, holder: subprocess.Popen) -> None:
    deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if any(
            instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY)
            for run in instance.get_runs()
        ):
            break
        time.sleep(0.5)
    holder.stdin.write("release\n")
    holder.stdin.flush()


def test_a_locked_warehouse_is_retried_and_a_failing_error_test_blocks_downstream(
    defs, data_paths, instance, monkeypatch
) -> None:
    # One test, two stages, to share the dbt builds: the retried build is the one the second stage needs.
    import dagster_app.assets.dbt as dbt_assets_module

    # 1. Another process holds the warehouse's write lock: the dbt step is retried, not failed.
    monkeypatch.setattr(dbt_assets_module, "TRANSIENT_RETRY_SECONDS", 1)
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(data_paths.duckdb_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        releaser = threading.Thread(target=_release_after_first_retry, args=(instance, holder), daemon=True)
        releaser.start()
        result = _build(defs, instance, [LANDING_FILES, CLOCK, WEB_BASE], raise_on_error=False)
        releaser.join(timeout=10)
    finally:
        holder.kill()
        holder.wait()
    retries = _events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY)
    assert retries, "the first attempt met the lock"
    assert "Could not set lock" in str(retries[0].event_specific_data.error)
    assert result.success, "the retry after the lock was released succeeded"
    assert {CLOCK, WEB_BASE} <= {e.asset_key for e in result.get_asset_materialization_events()}

    # 2. The incremental model keeps rows from earlier runs and tests the rows a run writes: an event held as
    # future_dated that the clock has caught up with is ranked again (rewritten) by the next run, so a
    # corrupted one is carried into that run's rows, and the check that its raw_row_key is never a copy of
    # its event_id (column_checks, error severity) fails and stops what is downstream.
    with duckdb.connect(str(data_paths.duckdb_path)) as connection:
        connection.execute(
            "insert into staging.base_web__events"
            " (raw_row_key, raw_values, event_id, anonymous_id, event_at, quarantine_reason, is_superseded)"
            " values ('corrupted-held-event', 'held text', 'corrupted-held-event', 'a1',"
            " timestamp '2000-01-01', 'future_dated', false)"
        )

    result = _build(defs, instance, [WEB_BASE, WEB_STAGING], raise_on_error=False)

    assert not result.success
    assert not _events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY), "a failing test is not retried"
    evaluations = {
        event.event_specific_data.check_name: event.event_specific_data
        for event in _events(result, dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    }
    failed = evaluations["column_checks_base_web__events"]
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    spec = defs.resolve_asset_graph().get_check_spec(dg.AssetCheckKey(WEB_BASE, failed.check_name))
    assert spec.blocking
    materialized = {event.asset_key for event in result.get_asset_materialization_events()}
    assert WEB_BASE in materialized, "the model itself was built"
    assert WEB_STAGING not in materialized, "nothing downstream of a failed blocking check is built"
