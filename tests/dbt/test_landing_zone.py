"""The landing zone as dbt sources: absent sources, file validation and mixed file formats (real dbt runs)."""

from __future__ import annotations

import dataclasses
import shutil

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from personalize.dbt import DbtError, run_dbt
from personalize.settings import Settings
from tests.conftest import SHOP_ORDERS_HEADER, write_csv

ORDER = ("1", "S1", "a@example.com", "paid", "USD", "10", "0", "2", "1", "13", "2025-01-01T10:00:00Z",
         "2025-01-02T10:00:00+01:00")  # fmt: skip


def _build_row_counts(settings: Settings) -> str:
    # The per-file counts (stg_landing_files) it sums are built with it.
    return run_dbt(["run", "--select", "+quality_raw_row_counts"], settings, capture=True)


def _query(settings: Settings, sql: str) -> list[tuple]:
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as connection:
        return connection.sql(sql).fetchall()


def test_orders_only_with_mixed_formats_builds_and_counts_rows(isolated_settings: Settings) -> None:
    orders = isolated_settings.raw_dir / "shop_orders"
    write_csv(orders / "2025-01.csv", SHOP_ORDERS_HEADER, [ORDER, ("2", *ORDER[1:])])
    table = pa.table(
        {name: [value] for name, value in zip(SHOP_ORDERS_HEADER, ("3", *ORDER[1:]), strict=True)}
    )
    pq.write_table(table, orders / "2025-02.parquet")
    (orders / ".DS_Store").write_text("ignored: hidden file")

    _build_row_counts(isolated_settings)

    counts = dict(
        _query(isolated_settings, "select source_name, raw_rows from quality.quality_raw_row_counts")
    )
    assert counts["shop_orders"] == 3
    assert {name: rows for name, rows in counts.items() if name != "shop_orders"} == {
        "crm_customers": 0, "shop_order_lines": 0, "products": 0, "web_events": 0, "esp_events": 0,
        "consent_events": 0, "privacy_requests": 0,
    }  # fmt: skip
    # An absent source is an empty relation that still has the contract's columns.
    columns = [row[0] for row in _query(isolated_settings, "describe raw.web_events")]
    assert columns[:3] == ["event_id", "anonymous_id", "user_id"]
    assert columns[-1] == "_source_file"

    # Files are remembered by their name in the landing zone, so a zone moved elsewhere (another mount, a
    # renamed folder) loads nothing twice: the incremental per-file counts still see 3 rows.
    moved = dataclasses.replace(isolated_settings, raw_dir=isolated_settings.raw_dir.with_name("moved"))
    shutil.move(isolated_settings.raw_dir, moved.raw_dir)
    _build_row_counts(moved)
    assert _query(moved, "select source_file, raw_rows from staging.stg_landing_files order by 1") == [
        ("shop_orders/2025-01.csv", 2), ("shop_orders/2025-02.parquet", 1)
    ]  # fmt: skip
    counts = "select raw_rows from quality.quality_raw_row_counts where source_name = 'shop_orders'"
    assert _query(moved, counts) == [(3,)]


def test_missing_optional_column_reads_as_null(isolated_settings: Settings) -> None:
    header = [name for name in SHOP_ORDERS_HEADER if name != "subtotal"]
    row = [value for name, value in zip(SHOP_ORDERS_HEADER, ORDER, strict=True) if name != "subtotal"]
    write_csv(isolated_settings.raw_dir / "shop_orders" / "orders.csv", header, [row])

    _build_row_counts(isolated_settings)

    assert _query(isolated_settings, "select order_id, subtotal, total from raw.shop_orders") == [
        ("1", None, "13")
    ]


def test_missing_required_column_names_source_file_and_column(isolated_settings: Settings) -> None:
    write_csv(isolated_settings.raw_dir / "shop_orders" / "good.csv", SHOP_ORDERS_HEADER, [ORDER])
    header = [name for name in SHOP_ORDERS_HEADER if name != "currency"]
    bad = write_csv(isolated_settings.raw_dir / "shop_orders" / "bad.csv", header, [ORDER[:4] + ORDER[5:]])

    with pytest.raises(DbtError) as failure:
        _build_row_counts(isolated_settings)

    assert "Raw source 'shop_orders'" in failure.value.output
    assert str(bad) in failure.value.output
    assert "missing required column 'currency'" in failure.value.output
    assert not isolated_settings.duckdb_path.exists() or not _query(
        isolated_settings,
        "select * from information_schema.tables where table_name = 'quality_raw_row_counts'",
    )


def test_unknown_extra_columns_are_ignored_with_a_warning(isolated_settings: Settings) -> None:
    path = write_csv(
        isolated_settings.raw_dir / "shop_orders" / "orders.csv",
        [*SHOP_ORDERS_HEADER, "loyalty_tier"],
        [[*ORDER, "gold"]],
    )

    output = _build_row_counts(isolated_settings)

    assert f"file {path} has columns outside the contract, ignored: loyalty_tier" in output
    columns = [row[0] for row in _query(isolated_settings, "describe raw.shop_orders")]
    assert "loyalty_tier" not in columns
    assert _query(isolated_settings, "select count(*) from raw.shop_orders") == [(1,)]


def test_absent_orders_source_stops_the_build(isolated_settings: Settings) -> None:
    write_csv(isolated_settings.raw_dir / "crm_customers" / "crm.csv", ["customer_id", "email", "updated_at"],
              [["C1", "a@example.com", "2025-01-01"]])  # fmt: skip

    with pytest.raises(DbtError) as failure:
        _build_row_counts(isolated_settings)

    assert "Raw source 'shop_orders' is required" in failure.value.output
    assert str(isolated_settings.raw_dir / "shop_orders") in failure.value.output


def test_building_one_seed_on_a_fresh_warehouse_runs_only_its_own_tests(isolated_settings: Settings) -> None:
    # A relationships test from stg_shop__orders to fx_rates must not run (and fail: the staging model is
    # not built) when only the seed is selected, as when one asset is materialized from Dagster.
    write_csv(isolated_settings.raw_dir / "shop_orders" / "orders.csv", SHOP_ORDERS_HEADER, [ORDER])

    output = run_dbt(["build", "--select", "fx_rates"], isolated_settings, capture=True)

    assert "relationships_stg_shop__orders" not in output
    assert _query(isolated_settings, "select count(*) from seeds.fx_rates")[0][0] > 0
