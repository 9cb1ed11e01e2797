"""The whole graph builds in-process on a small landing zone and reports what it built."""

import base64
import contextlib
import json
import os
import re
import time
from pathlib import Path

import duckdb
import pytest
from dagster import AssetCheckKey, AssetCheckSeverity, AssetKey, DagsterEventType, DagsterInstance

from personalize.settings import PROJECT_DIR

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


SOURCES = ("consent_events", "crm_customers", "esp_events", "privacy_requests", "products",
           "shop_order_lines", "shop_orders", "web_events")  # fmt: skip
# Big enough for the models to train and be compared with the baselines, small enough for a quick build.
DEMO_CUSTOMERS = 400
DEMO_SEED = 5
MODEL_KEYS = {kind: AssetKey(["ml", f"{kind}_model"]) for kind in ("churn", "ltv")}
SCORE_KEYS = {kind: AssetKey(["ml", f"{kind}_scores"]) for kind in ("churn", "ltv")}
FILE_SYNC = AssetKey(["esp", "file_sync"])
PNG_SIGNATURE = b"\x89PNG"


@pytest.fixture
def demo_paths(tmp_path, session_data, defs, monkeypatch):
    """An empty landing zone (`personalize run` generates the demo into it), and an empty warehouse, registry
    and export folder."""
    from tests.dagster.conftest import DataPaths

    session_data.remove_warehouse()
    paths = DataPaths(raw_dir=tmp_path / "raw", duckdb_path=session_data.duckdb_path)
    for name, value in paths.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    for name in ("MAILCHIMP_API_KEY", "KLAVIYO_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return paths


def _file_rows(folder) -> int:
    files = sorted(str(path) for path in folder.glob("*.parquet"))
    return duckdb.sql(f"select count(*) from read_parquet({files})").fetchall()[0][0] if files else 0


def _raw_rows(duckdb_path) -> dict[str, int]:
    with duckdb.connect(str(duckdb_path), read_only=True) as connection:
        return dict(
            connection.sql("select source_name, raw_rows from quality.quality_raw_row_counts").fetchall()
        )


def _metadata(event) -> dict:
    return {key: value.value for key, value in event.asset_materialization.metadata.items()}


def _count(duckdb_path, sql: str):
    with duckdb.connect(str(duckdb_path), read_only=True) as connection:
        return connection.sql(sql).fetchall()[0][0]


def test_personalize_run_materializes_everything_and_a_rerun_sends_nothing(
    defs, demo_paths, instance, capsys, monkeypatch
) -> None:
    """`personalize run` (what `make run` calls) on an empty landing zone: it generates the demo, then builds
    raw files to the ESP export in one in-process Dagster run (dbt, models, scores, activation, sync, checks)
    and prints a summary. A second run keeps the landing zone, and since the data did not change, nobody is
    sent again. One test, so that the whole graph is built twice rather than three times."""
    from dagster_app.checks import every_raw_row_accounted_for
    from personalize import pipeline
    from personalize.cli import main
    from tests.conftest import write_csv

    # The run's instance is kept open after it ends, so that its events can be read (without a DAGSTER_HOME
    # the command runs in a throwaway instance).
    monkeypatch.setattr(pipeline, "_instance", lambda: contextlib.nullcontext(instance))
    started = time.time()
    assert main(["run", "--customers", str(DEMO_CUSTOMERS), "--seed", str(DEMO_SEED)]) == 0
    summary = capsys.readouterr().out
    # The run's dbt invocations built models and ran data tests, and left the unit tests (static fixtures)
    # to development and CI.
    invocations = Path(PROJECT_DIR) / os.environ.get("DBT_TARGET_PATH", "target")
    ran = [
        result["unique_id"].split(".")[0]
        for path in invocations.glob("*/run_results.json")
        if path.stat().st_mtime >= started
        for result in json.loads(path.read_text())["results"]
    ]
    assert {"model", "test"} <= set(ran) and "unit_test" not in ran

    # Every asset event of the run, read back from the instance it ran in.
    [run] = instance.get_run_records()
    events = [
        entry.dagster_event for entry in instance.all_logs(run.dagster_run.run_id) if entry.dagster_event
    ]

    # Later steps of the same in-process run (Python assets writing scores) can open the warehouse for
    # writing: the dbt adapter that dagster-dbt used for row counts has let go of it.
    with defs.resources["duckdb"].get_connection() as connection:
        connection.execute("create or replace table main.after_build as select 1 as ok")

    # Every delivered raw row is counted, per source.
    rows = _raw_rows(demo_paths.duckdb_path)
    assert rows == {source: _file_rows(demo_paths.raw_dir / source) for source in SOURCES}
    assert rows["shop_orders"] > 0 and rows["web_events"] > 0

    graph = defs.resolve_asset_graph()
    materializable = {key for key in graph.get_all_asset_keys() if graph.get(key).is_materializable}
    materialized = {
        event.asset_key for event in events if event.event_type == DagsterEventType.ASSET_MATERIALIZATION
    }
    assert materialized == materializable
    assert {*MODEL_KEYS.values(), *SCORE_KEYS.values(), FILE_SYNC} <= materialized

    # Row counts for tables (dbt's own seeds included).
    quality = instance.get_latest_materialization_event(QUALITY_MODEL)
    assert _metadata(quality)["dagster/row_count"] == 8
    fx_rates = instance.get_latest_materialization_event(AssetKey(["seeds", "fx_rates"]))
    assert _metadata(fx_rates)["dagster/row_count"] > 0

    # The models: metrics against the baselines, the promotion decision and the charts, as PNG in markdown.
    for kind, key in MODEL_KEYS.items():
        model = _metadata(instance.get_latest_materialization_event(key))
        assert model["version"].startswith(f"{kind}-")
        assert isinstance(model["promoted"], bool) and model["promotion_reason"]
        table = model["metrics"]
        assert "| xgboost |" in table and "| bg_nbd |" in table and "| pareto_nbd |" in table
        charts = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", model["plots"])
        assert len(charts) == (3 if kind == "churn" else 2)  # ROC for churn only
        assert all(base64.b64decode(chart).startswith(PNG_SIGNATURE) for chart in charts)
    # The scores: one per person to score, written by what the registry says is active (or a baseline).
    people = _count(demo_paths.duckdb_path, "select count(*) from ml.ml_scoring_features")
    assert people > 0
    for kind, key in SCORE_KEYS.items():
        scores = _metadata(instance.get_latest_materialization_event(key))
        assert scores["dagster/row_count"] == people
        version = _count(demo_paths.duckdb_path, f"select any_value(model_version) from ml.{kind}_scores")
        assert scores["model_version"] == version
    # Activation read them: everyone scored has an LTV tier.
    unscored = _count(
        demo_paths.duckdb_path,
        "select count(*) from activation.customer_score_tiers tiers inner join ml.ltv_scores scores"
        " on tiers.person_id = scores.person_id where tiers.ltv_tier = 'unscored'",
    )
    assert unscored == 0
    # The file sync sent the whole audience, once, and says so.
    audience = _count(demo_paths.duckdb_path, "select count(*) from activation.esp_audience")
    sync = _metadata(instance.get_latest_materialization_event(FILE_SYNC))
    assert audience > 0
    assert sync["inserted"] == sync["sent"] == audience
    assert sync["failed"] == sync["rejected"] == 0 and sync["outcome"] == "success"
    assert (demo_paths.export_dir / "audience.csv").is_file()

    # dbt tests and the Python checks ran as asset checks, and all passed.
    evaluations = [
        event.event_specific_data
        for event in events
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    assert len(evaluations) == len(list(graph.asset_check_keys))
    failed = [(e.asset_key, e.check_name, e.description) for e in evaluations if not e.passed]
    assert not failed

    # The Python reconciliation check ran with them, and shows the counts of every source.
    [reconciled] = [e for e in evaluations if e.asset_check_key == RECONCILIATION_CHECK]
    assert reconciled.metadata["sources"].value == 8
    assert reconciled.metadata["unbalanced_sources"].value == "none"
    assert graph.get_check_spec(RECONCILIATION_CHECK).blocking
    # The landing zone was observed in the same run, with a data version per source.
    orders = instance.fetch_observations(AssetKey(["raw", "shop_orders"]), limit=1).records[0]
    observation = orders.asset_observation
    order_files = list((demo_paths.raw_dir / "shop_orders").iterdir())
    assert observation.metadata["file_count"].value == len(order_files)
    assert observation.metadata["bytes"].value == sum(path.stat().st_size for path in order_files)
    assert observation.tags["dagster/data_version"]

    # The summary: people per segment and tier, each model against its baselines, the sync counts.
    assert "people per segment and LTV tier" in summary
    assert re.search(rf"^all(\s+[\d,]+){{5}}\s+{audience:,}$", summary, re.MULTILINE), summary
    for kind in MODEL_KEYS:
        assert re.search(rf"^{kind}: candidate {kind}-\S+ (PROMOTED|not promoted)", summary, re.MULTILINE), (
            summary
        )
    assert re.search(r"^\s+bg_nbd\s+0\.\d{4}", summary, re.MULTILINE), "metrics of the baselines"
    assert _sync_line(summary) == {"sent": audience, "inserted": audience, "changed": 0, "failed": 0}

    # A second run keeps the existing landing zone instead of generating over it. Nothing changed in the
    # data, so the retrained models score the same and nobody is sent again.
    stamps = {path: path.stat().st_mtime_ns for path in demo_paths.raw_dir.rglob("*.parquet")}
    assert main(["run", "--customers", "999", "--seed", "6"]) == 0
    assert {path: path.stat().st_mtime_ns for path in demo_paths.raw_dir.rglob("*.parquet")} == stamps
    assert _sync_line(capsys.readouterr().out) == {"sent": 0, "inserted": 0, "changed": 0, "failed": 0}

    # The model checks, on the materialized graph and broken on purpose (no other build needed).
    _model_quality_fails_for_an_active_model_that_loses(demo_paths)
    _score_freshness_fails_for_old_or_missing_scores(defs)

    # A source that lost a row fails it, naming the source.
    with defs.resources["duckdb"].get_connection() as connection:
        connection.execute(
            "update quality.quality_source_reconciliation set difference = 1"
            " where source_name = 'shop_orders'"
        )
    broken = every_raw_row_accounted_for(duckdb=defs.resources["duckdb"])
    assert not broken.passed and broken.severity == AssetCheckSeverity.ERROR
    assert broken.metadata["unbalanced_sources"].value == "shop_orders"

    # Between daily builds, the 15-minute refresh loads new events into the built warehouse (it reads models,
    # like the product catalogue, that it does not rebuild), and delivers the audience. Here rather than in a
    # test of its own, to save a full build.
    loaded_before = _count(demo_paths.duckdb_path, "select count(*) from staging.base_web__events")
    write_csv(demo_paths.raw_dir / "web_events" / "events_2024_03_09.csv", WEB_EVENTS_HEADER, NEW_WEB_EVENTS)
    refresh = defs.resolve_job_def("frequent_refresh").execute_in_process(instance=instance)
    assert refresh.success
    refreshed = {event.asset_key for event in refresh.get_asset_materialization_events()}
    assert {AssetKey(["staging", "base_web__events"]), AssetKey(["staging", "stg_data_clock"])} <= refreshed
    assert FILE_SYNC in refreshed
    assert AssetKey(["marts", "customer_360"]) not in refreshed, "heavy marts wait for the daily build"
    assert not refreshed & set(MODEL_KEYS.values()), "models retrain with the daily build"
    loaded = _count(demo_paths.duckdb_path, "select count(*) from staging.base_web__events")
    assert loaded == loaded_before + 2
    clean = _count(
        demo_paths.duckdb_path, "select count(*) from staging.stg_web__events where event_id = 'e-1'"
    )
    assert clean == 1


def _sync_line(output: str) -> dict[str, int]:
    """The file destination's counts from the summary's sync table."""
    lines = output.splitlines()
    header = lines[lines.index("sync results") + 1].split()[1:]
    [row] = [line for line in lines if line.startswith("file ")]
    values = dict(
        zip(header, (int(cell.replace(",", "")) for cell in row.split()[1 : len(header) + 1]), strict=True)
    )
    return {name: values[name] for name in ("sent", "inserted", "changed", "failed")}


def _model_quality_fails_for_an_active_model_that_loses(paths) -> None:
    import json

    from dagster_app.checks import model_quality
    from ml import registry

    for kind in MODEL_KEYS:
        check = model_quality(kind)
        assert check.passed, check.description
        if registry.active_version(paths.model_dir, kind) is None:
            assert "is scoring" in check.description, "says clearly that a baseline scores"
    # Break one kind: an active model whose recorded metrics lose to a baseline, or a model that was never
    # promoted made active by hand.
    kind = "ltv"
    active = registry.active_version(paths.model_dir, kind)
    if active is None:
        registry.activate(paths.model_dir, kind, registry.latest(paths.model_dir, kind).version)
        expected = "was never promoted"
    else:
        path = paths.model_dir / kind / active / "metadata.json"
        metadata = json.loads(path.read_text())
        metadata["metrics"]["xgboost"]["normalized_gini"] = -1.0
        path.write_text(json.dumps(metadata))
        expected = "does not beat its baselines"
    broken = model_quality(kind)
    assert not broken.passed and expected in broken.description, broken.description


def _score_freshness_fails_for_old_or_missing_scores(defs) -> None:
    from dagster_app.checks import score_freshness

    duckdb_resource = defs.resources["duckdb"]
    assert score_freshness("churn", duckdb_resource).passed
    with duckdb_resource.get_connection() as connection:
        connection.execute("update ml.churn_scores set scored_at = scored_at - interval 3 day")
    stale = score_freshness("churn", duckdb_resource)
    assert not stale.passed and "oldest scored_at" in stale.description
    with duckdb_resource.get_connection() as connection:
        connection.execute(
            "delete from ml.ltv_scores where person_id = (select min(person_id) from ml.ltv_scores)"
        )
    incomplete = score_freshness("ltv", duckdb_resource)
    assert not incomplete.passed and "rows in ml.ltv_scores" in incomplete.description


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


def test_a_file_missing_a_required_column_fails_the_run_naming_the_file(
    defs, data_paths, instance, capsys, monkeypatch
) -> None:
    """Through `personalize run` (what `make run` calls), so that one failed run also shows the command's
    exit code and message: orders are there (nothing is generated), but one file lacks required columns."""
    from personalize import pipeline
    from personalize.cli import main

    bad = data_paths.raw_dir / "shop_orders" / "broken_export.csv"
    bad.write_text("order_id,customer_id,email\no-9,c-9,x@example.com\n")
    # The run's instance is kept open after it ends, so that its events can be read.
    monkeypatch.setattr(pipeline, "_instance", lambda: contextlib.nullcontext(instance))

    assert main(["run"]) == 1
    error = capsys.readouterr().err
    assert "personalize run: error: Dagster run" in error
    assert "- dbt build (step personalize_dbt" in error and "broken_export.csv" in error, error

    [run] = instance.get_run_records()
    assert run.dagster_run.job_name == "full_build"
    events = [
        entry.dagster_event for entry in instance.all_logs(run.dagster_run.run_id) if entry.dagster_event
    ]
    failures = [event for event in events if event.event_type == DagsterEventType.STEP_FAILURE]
    # The score assets split the dbt assets into two steps (before and after them): the first one fails.
    [failure] = failures
    assert failure.step_key.startswith("personalize_dbt"), failure.step_key
    assert not [e for e in events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY], (
        "a broken file is not a transient failure: no retry"
    )
    message = str(failures[0].event_specific_data.error)
    assert "broken_export.csv" in message and "status" in message, message
    assert not [e for e in events if e.event_type == DagsterEventType.ASSET_MATERIALIZATION], (
        "nothing may look built after a failed load"
    )
