"""`personalize run` (what `make run` calls): generate the demo when the landing zone is empty, then build."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from personalize.cli import main
from personalize.settings import DUCKDB_PATH_ENV, RAW_DIR_ENV

SOURCES = ("crm_customers", "shop_orders", "shop_order_lines", "products", "web_events", "esp_events",
           "consent_events", "privacy_requests")  # fmt: skip


def _file_rows(folder: Path) -> int:
    files = sorted(str(path) for path in folder.glob("*.parquet"))
    return duckdb.sql(f"select count(*) from read_parquet({files})").fetchall()[0][0] if files else 0


def test_run_generates_the_demo_once_and_builds_the_warehouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw_dir, warehouse = tmp_path / "raw", tmp_path / "warehouse.duckdb"
    monkeypatch.setenv(RAW_DIR_ENV, str(raw_dir))
    monkeypatch.setenv(DUCKDB_PATH_ENV, str(warehouse))
    monkeypatch.setenv("PERSONALIZE_EXPORT_DIR", str(tmp_path / "exports"))  # run ends with a file sync

    assert main(["run", "--customers", "400", "--seed", "5"]) == 0

    expected = {source: _file_rows(raw_dir / source) for source in SOURCES}
    assert expected["shop_orders"] > 0 and expected["web_events"] > 0
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        counted = dict(
            connection.sql("select source_name, raw_rows from quality.quality_raw_row_counts").fetchall()
        )
        seeded = connection.sql("select count(*) from seeds.fx_rates").fetchall()[0][0]
    assert counted == expected
    assert seeded > 0

    # A second run keeps the existing landing zone instead of generating over it.
    stamps = {path: path.stat().st_mtime_ns for path in raw_dir.rglob("*.parquet")}
    assert main(["run", "--customers", "999", "--seed", "6"]) == 0
    assert {path: path.stat().st_mtime_ns for path in raw_dir.rglob("*.parquet")} == stamps
