"""`personalize run` (what `make run` calls): generate the demo when the landing zone is empty, then
materialize the whole Dagster graph (dbt, models, scores, activation, file sync) and print a summary."""

from __future__ import annotations

import re
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
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    raw_dir, warehouse = tmp_path / "raw", tmp_path / "warehouse.duckdb"
    monkeypatch.setenv(RAW_DIR_ENV, str(raw_dir))
    monkeypatch.setenv(DUCKDB_PATH_ENV, str(warehouse))
    monkeypatch.setenv("PERSONALIZE_EXPORT_DIR", str(tmp_path / "exports"))  # run ends with a file sync
    monkeypatch.setenv("PERSONALIZE_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # a throwaway instance, not the developer's run history
    for name in ("MAILCHIMP_API_KEY", "KLAVIYO_API_KEY"):
        monkeypatch.delenv(name, raising=False)

    assert main(["run", "--customers", "400", "--seed", "5"]) == 0
    first = capsys.readouterr().out

    expected = {source: _file_rows(raw_dir / source) for source in SOURCES}
    assert expected["shop_orders"] > 0 and expected["web_events"] > 0
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        counted = dict(
            connection.sql("select source_name, raw_rows from quality.quality_raw_row_counts").fetchall()
        )
        seeded = connection.sql("select count(*) from seeds.fx_rates").fetchall()[0][0]
        audience = connection.sql("select count(*) from activation.esp_audience").fetchall()[0][0]
        scored = connection.sql("select count(*) from ml.churn_scores").fetchall()[0][0]
    assert counted == expected
    assert seeded > 0
    assert audience > 0 and scored > 0

    # The summary: people per segment and tier, each model against its baselines, the sync counts.
    assert "people per segment and LTV tier" in first
    assert re.search(rf"^all(\s+[\d,]+){{5}}\s+{audience:,}$", first, re.MULTILINE), first
    for kind in ("churn", "ltv"):
        assert re.search(rf"^{kind}: candidate {kind}-\S+ (PROMOTED|not promoted)", first, re.MULTILINE), (
            first
        )
    assert re.search(r"^\s+bg_nbd\s+0\.\d{4}", first, re.MULTILINE), "metrics of the baselines"
    assert _sync_line(first) == {"sent": audience, "inserted": audience, "changed": 0, "failed": 0}

    # A second run keeps the existing landing zone instead of generating over it.
    stamps = {path: path.stat().st_mtime_ns for path in raw_dir.rglob("*.parquet")}
    assert main(["run", "--customers", "999", "--seed", "6"]) == 0
    assert {path: path.stat().st_mtime_ns for path in raw_dir.rglob("*.parquet")} == stamps
    # Nothing changed in the data, so the retrained models score the same and nobody is sent again.
    assert _sync_line(capsys.readouterr().out) == {"sent": 0, "inserted": 0, "changed": 0, "failed": 0}


def test_a_failing_asset_names_itself_and_exits_non_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import write_csv

    raw_dir = tmp_path / "raw"
    # Orders are there (so nothing is generated), but the file lacks required columns.
    write_csv(
        raw_dir / "shop_orders" / "broken_export.csv", ["order_id", "email"], [["o-1", "x@example.com"]]
    )
    monkeypatch.setenv(RAW_DIR_ENV, str(raw_dir))
    monkeypatch.setenv(DUCKDB_PATH_ENV, str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("PERSONALIZE_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("PERSONALIZE_EXPORT_DIR", str(tmp_path / "exports"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)

    assert main(["run"]) == 1
    error = capsys.readouterr().err
    assert "personalize run: error: Dagster run" in error
    assert "- dbt build (step personalize_dbt" in error and "broken_export.csv" in error, error


def _sync_line(output: str) -> dict[str, int]:
    """The file destination's counts from the summary's sync table."""
    lines = output.splitlines()
    header = lines[lines.index("sync results") + 1].split()[1:]
    [row] = [line for line in lines if line.startswith("file ")]
    values = dict(
        zip(header, (int(cell.replace(",", "")) for cell in row.split()[1 : len(header) + 1]), strict=True)
    )
    return {name: values[name] for name in ("sent", "inserted", "changed", "failed")}
