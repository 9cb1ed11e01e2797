"""Incremental event models: appending a new day of raw files and running incrementally gives exactly what
a full refresh gives, and a rerun with no new files changes nothing."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from datagen import GeneratorConfig, generate
from datagen.arrivals import deliver, split_last_day
from personalize.dbt import run_dbt
from personalize.settings import Settings

COMPARED = [
    "staging.base_web__events",
    "staging.base_esp__events",
    "staging.stg_web__events",
    "staging.stg_esp__events",
    "intermediate.int_web_sessions",
    "intermediate.int_identity_map",
    "quality.quality_source_reconciliation",
]
# Only what the compared relations are built from (and their tests): marts, ML and activation have their own
# suites, and building them four times here would only cost time.
STAGING_UP_TO_QUALITY = ["--select", "+staging", "+intermediate", "+quality"]


def _table(settings: Settings, relation: str) -> list[tuple]:
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as connection:
        return sorted(connection.sql(f"select * from {relation}").fetchall(), key=repr)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Settings, Path]:
    root = tmp_path_factory.mktemp("incremental")
    generate(GeneratorConfig(customers=1_500, seed=21, out=root / "full"))
    split_last_day(root / "full", root / "landing", root / "next_day")
    # Same file name in two folders: dbt keeps its saved parse when only the folder changes (run_dbt).
    incremental = Settings(raw_dir=root / "landing", duckdb_path=root / "incremental" / "warehouse.duckdb")
    refreshed = Settings(raw_dir=root / "landing", duckdb_path=root / "refreshed" / "warehouse.duckdb")
    return incremental, refreshed, root / "next_day"


def test_incremental_run_after_a_new_day_equals_full_refresh(
    datasets: tuple[Settings, Settings, Path],
) -> None:
    incremental, refreshed, next_day = datasets
    run_dbt(["build", *STAGING_UP_TO_QUALITY], incremental, capture=True)
    before = {relation: _table(incremental, relation) for relation in ("staging.stg_web__events",)}

    deliver(next_day, incremental.raw_dir)
    run_dbt(["build", *STAGING_UP_TO_QUALITY], incremental, capture=True)
    run_dbt(["build", "--full-refresh", *STAGING_UP_TO_QUALITY], refreshed, capture=True)

    grown = _table(incremental, "staging.stg_web__events")
    assert len(grown) > len(before["staging.stg_web__events"])
    for relation in COMPARED:
        assert _table(incremental, relation) == _table(refreshed, relation), relation


def test_rerun_without_new_files_is_idempotent(datasets: tuple[Settings, Settings, Path]) -> None:
    incremental, _, _ = datasets
    snapshot = {relation: _table(incremental, relation) for relation in COMPARED}

    run_dbt(["build", *STAGING_UP_TO_QUALITY], incremental, capture=True)

    assert {relation: _table(incremental, relation) for relation in COMPARED} == snapshot
