"""Orders-only input: a landing zone with nothing but shop_orders, made from the real CDNOW sample, builds
every mart (real dbt run); the web and email parts come out empty or null."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

from personalize.dbt import run_dbt
from personalize.settings import PROJECT_DIR, Settings
from tests.conftest import SHOP_ORDERS_HEADER, write_csv

# ../shared relative to the repository root, as on CI.
CDNOW_FILE = PROJECT_DIR.parent / "shared" / "data" / "cdnow" / "CDNOW_sample.txt"
# The first customers of the sample (by their index 1..2357) keep the build fast.
SAMPLE_CUSTOMERS = 300
MARTS_DIR = PROJECT_DIR / "dbt_project" / "models" / "marts"
# The built warehouse and the total dollar value of the sampled CDNOW lines.
OrdersOnlyWarehouse = tuple[duckdb.DuckDBPyConnection, float]


def cdnow_to_shop_orders(cdnow_file: Path, customers: int) -> tuple[list[tuple[str, ...]], float]:
    """Rows of the shop_orders contract for the first `customers` CDNOW customers, and their total value.

    CDNOW has one line per purchase (customer id, sample index, yyyymmdd, CDs, dollars); each line becomes
    one shipped USD order of a registered customer without an email, placed at noon UTC on its day.
    """
    rows: list[tuple[str, ...]] = []
    total = 0.0
    for line_number, line in enumerate(cdnow_file.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 5:
            raise ValueError(f"{cdnow_file}:{line_number}: expected 5 fields, got {len(fields)}: {line!r}")
        master_id, sample_index, day, _cds, dollars = fields
        if int(sample_index) > customers:
            continue
        placed_at = datetime.strptime(day, "%Y%m%d").strftime("%Y-%m-%dT12:00:00Z")
        rows.append((
            f"cdnow-{line_number}", f"cdnow-{master_id}", "", "shipped", "USD", dollars, "0", "0", "0",
            dollars, placed_at, placed_at,
        ))  # fmt: skip
        total += float(dollars)
    return rows, total


@pytest.fixture(scope="module")
def orders_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrdersOnlyWarehouse]:
    if not CDNOW_FILE.exists():
        pytest.fail(f"{CDNOW_FILE} is missing: the orders-only test needs the shared CDNOW sample")
    root = tmp_path_factory.mktemp("orders_only")
    rows, total = cdnow_to_shop_orders(CDNOW_FILE, SAMPLE_CUSTOMERS)
    write_csv(root / "raw" / "shop_orders" / "cdnow.csv", SHOP_ORDERS_HEADER, rows)
    settings = Settings(raw_dir=root / "raw", duckdb_path=root / "warehouse.duckdb")
    # Every mart and everything upstream of it, with their data tests; fails loudly on any error. (The unit
    # tests do not depend on the data and run with every full build elsewhere in the suite.)
    run_dbt(["build", "--select", "+marts", "--exclude-resource-type", "unit_test"], settings, capture=True)
    connection = duckdb.connect(str(settings.duckdb_path), read_only=True)
    yield connection, total
    connection.close()


def _one(connection: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    rows = connection.sql(sql).fetchall()
    assert len(rows) == 1, sql
    return rows[0]


def test_every_mart_is_built(orders_only: OrdersOnlyWarehouse) -> None:
    connection, _ = orders_only
    expected = {path.stem for path in MARTS_DIR.rglob("*.sql")}
    built = {
        name for (name,) in connection.sql(
            "select table_name from information_schema.tables where table_schema = 'marts'"
        ).fetchall()
    }  # fmt: skip
    assert {"customer_360", "customer_rfm", "behavioral_triggers", "product_recommendations"} <= expected
    assert expected - built == set()


def test_orders_reach_rfm_and_customer_360(orders_only: OrdersOnlyWarehouse) -> None:
    connection, total = orders_only
    # The as-of date defaults to the latest data: the sample's last purchase day.
    assert _one(connection, "select count(*), min(as_of_date), max(as_of_date) from marts.customer_rfm") == (
        SAMPLE_CUSTOMERS, date(1998, 6, 27), date(1998, 6, 27),
    )  # fmt: skip
    people, revenue = _one(connection, "select count(*), sum(net_revenue) from marts.customer_360")
    assert people == SAMPLE_CUSTOMERS
    assert float(revenue) == pytest.approx(total, abs=0.01)


def test_web_and_email_parts_are_empty_or_null(orders_only: OrdersOnlyWarehouse) -> None:
    connection, _ = orders_only
    web_and_email = _one(
        connection,
        """
        select
            max(sessions_90d), max(product_views_90d), max(open_cart_value), max(email_sends_90d),
            max(email_human_opens_90d), max(email_clicks_90d),
            count(last_viewed_product_id), count(last_email_engagement_at),
            count(email_click_to_open_rate_90d),
            count(top_category), count(last_purchased_product_id), count(email),
            bool_or(can_email), min(cannot_email_reason), max(cannot_email_reason)
        from marts.customer_360
        """,
    )
    assert web_and_email == (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, False, "no_email", "no_email")
    # No web events and no catalogue: no cart or browse triggers and nothing to recommend.
    triggers = dict(
        connection.sql("select trigger_name, count(*) from marts.behavioral_triggers group by 1").fetchall()
    )
    assert set(triggers) <= {"winback", "post_purchase_cross_sell"}
    assert _one(connection, "select count(*) from marts.product_recommendations") == (0,)
    # The order-derived trigger still works: CDNOW buyers enter at_risk 90 days after their last purchase.
    assert triggers.get("winback", 0) > 0
