"""`personalize run` (what `make run` calls) when a step fails.

The successful path (generating the demo into an empty landing zone, materializing the whole graph, the
summary, and a rerun that sends nobody again) is tested in tests/dagster/test_dagster_materialize.py, on the
same build that checks every asset's events.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from personalize.cli import main
from personalize.settings import DUCKDB_PATH_ENV, RAW_DIR_ENV


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
