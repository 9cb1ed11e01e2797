"""Incremental event models: appending a new day of raw files and running incrementally gives exactly what
a full refresh gives, and a rerun with no new files changes nothing."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from datagen import GeneratorConfig, generate
from personalize.dbt import run_dbt
from personalize.settings import Settings

# (folder, timestamp column that decides which day a row arrived on)
ARRIVAL_COLUMNS = {"shop_orders": "updated_at", "web_events": "received_at", "esp_events": "event_at"}
COMPARED = [
    "staging.base_web__events",
    "staging.base_esp__events",
    "staging.stg_web__events",
    "staging.stg_esp__events",
    "intermediate.int_web_sessions",
    "intermediate.int_identity_map",
    "quality.quality_source_reconciliation",
]


def _split_by_arrival(full: Path, early: Path, late: Path) -> None:
    """Copy `full` into `early` (everything up to the last day) and `late` (the last day's arrivals)."""
    with duckdb.connect() as connection:
        connection.execute("set TimeZone = 'UTC'")
        for folder in full.iterdir():
            if folder.name.startswith("_"):
                continue
            target = early / folder.name
            target.mkdir(parents=True)
            files = sorted(str(path) for path in folder.glob("*.parquet"))
            column = ARRIVAL_COLUMNS.get(folder.name)
            relation = f"read_parquet({files})"
            if column is None:
                connection.execute(f"copy (select * from {relation}) to '{target}/part-0.parquet'")
                continue
            arrived = f"try_cast({column} as timestamptz)"
            cutoff = f"(select max({arrived}) - interval 1 day from {relation})"
            # Rows whose timestamp cannot be parsed arrive with the early files.
            connection.execute(
                f"copy (select * from {relation} where not coalesce({arrived} > {cutoff}, false)) "
                f"to '{target}/part-0.parquet'"
            )
            (late / folder.name).mkdir(parents=True)
            connection.execute(
                f"copy (select * from {relation} where {arrived} > {cutoff}) to '{late / folder.name}/part-1.parquet'"
            )


def _table(settings: Settings, relation: str) -> list[tuple]:
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as connection:
        return sorted(connection.sql(f"select * from {relation}").fetchall(), key=repr)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Settings, Path]:
    root = tmp_path_factory.mktemp("incremental")
    generate(GeneratorConfig(customers=1_500, seed=21, out=root / "full"))
    _split_by_arrival(root / "full", root / "landing", root / "next_day")
    incremental = Settings(raw_dir=root / "landing", duckdb_path=root / "incremental.duckdb")
    refreshed = Settings(raw_dir=root / "landing", duckdb_path=root / "refreshed.duckdb")
    return incremental, refreshed, root / "next_day"


def test_incremental_run_after_a_new_day_equals_full_refresh(
    datasets: tuple[Settings, Settings, Path],
) -> None:
    incremental, refreshed, next_day = datasets
    run_dbt(["build"], incremental, capture=True)
    before = {relation: _table(incremental, relation) for relation in ("staging.stg_web__events",)}

    for folder in next_day.iterdir():
        for path in folder.iterdir():
            path.rename(incremental.raw_dir / folder.name / path.name)
    run_dbt(["build"], incremental, capture=True)
    run_dbt(["build", "--full-refresh"], refreshed, capture=True)

    grown = _table(incremental, "staging.stg_web__events")
    assert len(grown) > len(before["staging.stg_web__events"])
    for relation in COMPARED:
        assert _table(incremental, relation) == _table(refreshed, relation), relation


def test_rerun_without_new_files_is_idempotent(datasets: tuple[Settings, Settings, Path]) -> None:
    incremental, _, _ = datasets
    snapshot = {relation: _table(incremental, relation) for relation in COMPARED}

    run_dbt(["build"], incremental, capture=True)

    assert {relation: _table(incremental, relation) for relation in COMPARED} == snapshot
