"""Warehouses for the as-of and point-in-time tests: one generated landing zone, built whole and cut back.

Both test modules need the same full build, so builds are cached for the session by name (each module's
fixture calls `built_warehouse`), and every test pays for each dbt run once. Builds run models and seeds
only (no data tests: other modules run those) and only what the marts and ML models need, each with its
own dbt target path so its manifest can be read back.
"""

from __future__ import annotations

import csv
import functools
import json
import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb

from datagen import GeneratorConfig, generate
from personalize.dbt import run_dbt
from personalize.settings import Settings
from tests.dbt.raw_truncation import parse_instant, truncate_landing_zone

CUSTOMERS = 300
SEED = 23
# The generator's data runs to 2025-12-31. AS_OF is two months earlier, so orders are refunded and
# cancelled, CRM records change and identities link after it; TRAINING_CUTOFF is the latest ML cutoff
# of a build as of AS_OF (AS_OF - ml_horizon_days, default 90).
AS_OF = date(2025, 10, 31)
TRAINING_CUTOFF = date(2025, 8, 2)
MARTS_FOLDER = "dbt_project/models/marts/"
BUILD_SELECTION = ("+path:dbt_project/models/marts", "+path:dbt_project/models/ml")

# The seasonal clock and exposure weigh days only with a reference year of at least this many orders
# (default 1000); these 300 customers place a few hundred a year, and the point-in-time tests need the
# weighing switched on.
SEASONAL_MIN_REFERENCE_ORDERS = 100

# Money is summed in floating point, so two builds of the same data may differ in the last digits.
ABSOLUTE_TOLERANCE = 1e-4


LATE_REFUNDS = 5
LATE_REFUND_AT = "2025-11-05T12:00:00Z"


def _add_late_refunds(raw_dir: Path) -> None:
    """Refund, after AS_OF, a few purchases made well before it: the generator refunds rarely and soon,
    and a purchase undone after the as-of date is exactly what must not leak backward."""
    orders_dir = raw_dir / "shop_orders"
    latest: dict[str, dict[str, str]] = {}
    header: list[str] = []
    for path in sorted(orders_dir.glob("*.csv")):
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            header = list(reader.fieldnames or [])
            for row in reader:
                updated_at = parse_instant(row["updated_at"] or "")
                if not row["order_id"] or updated_at is None:
                    continue
                current = latest.get(row["order_id"])
                if current is None or parse_instant(current["updated_at"]) < updated_at:
                    latest[row["order_id"]] = row
    as_of_start = datetime.combine(AS_OF, time(0), tzinfo=UTC)
    candidates = sorted(
        order_id
        for order_id, row in latest.items()
        if row["status"] in ("placed", "paid", "shipped")
        and parse_instant(row["updated_at"]) < as_of_start - timedelta(days=30)
        and "test.invalid" not in (row["email"] or "")
    )
    assert len(candidates) >= LATE_REFUNDS, "too few purchases to refund"
    with (orders_dir / "late-refunds.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        # Spread over the customers rather than all from the first one.
        for order_id in candidates[:: len(candidates) // LATE_REFUNDS][:LATE_REFUNDS]:
            writer.writerow({**latest[order_id], "status": "refunded", "updated_at": LATE_REFUND_AT})


@functools.cache
def _landing_zone(base: Path) -> Path:
    raw_dir = base / "raw"
    generate(GeneratorConfig(customers=CUSTOMERS, seed=SEED, out=raw_dir, format="csv"))
    _add_late_refunds(raw_dir)
    return raw_dir


@functools.cache
def built_warehouse(
    base: Path, name: str, cut_at: date | None, as_of: date, selection: tuple[str, ...] = BUILD_SELECTION
) -> Path:
    """The warehouse of the landing zone (cut back to the end of `cut_at` when given) as of `as_of`."""
    raw_dir = _landing_zone(base)
    if cut_at is not None:
        cut_dir = base / f"raw_cut_{cut_at.isoformat()}"
        truncate_landing_zone(raw_dir, cut_dir, cut_at)
        raw_dir = cut_dir
    # One file name and one target folder for every build: with the same vars, dbt reuses its saved parse.
    settings = Settings(raw_dir=raw_dir, duckdb_path=base / name / "warehouse.duckdb")
    run_dbt(
        ["build", "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test",
         "--select", *selection, "--target-path", str(base / "target")],
        settings,
        vars_json=json.dumps(
            {"as_of": as_of.isoformat(), "ml_seasonal_min_reference_orders": SEASONAL_MIN_REFERENCE_ORDERS}
        ),
        capture=True,
    )  # fmt: skip
    return settings.duckdb_path


def mart_relations(base: Path, name: str) -> list[tuple[str, str]]:
    """(schema, table) of every table model under models/marts, from the builds' shared manifest."""
    manifest = json.loads((base / "target" / "manifest.json").read_text())
    relations = []
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model" or not node["original_file_path"].startswith(MARTS_FOLDER):
            continue
        if node["config"]["materialized"] == "ephemeral":
            continue
        relations.append((node["schema"], node["alias"] or node["name"]))
    return sorted(relations)


def _is_number(value: object) -> bool:
    return isinstance(value, float | Decimal)


def _sort_key(row: Sequence[object]) -> tuple:
    # Exact values first (keys, dates, text, integers), then numbers rounded, so rows that differ only
    # by float noise sort to the same place.
    exact = tuple((value is None, str(value)) for value in row if not _is_number(value))
    rounded = tuple(round(float(value), 2) for value in row if _is_number(value))
    return exact, rounded


def _same_value(left: object, right: object) -> bool:
    if _is_number(left) and _is_number(right):
        return math.isclose(float(left), float(right), rel_tol=0, abs_tol=ABSOLUTE_TOLERANCE)
    return left == right


def row_differences(
    columns: Sequence[str], left: list[tuple], right: list[tuple], limit: int = 5
) -> list[str]:
    """Describe how two row sets differ (empty when equal up to float noise), for an assertion message."""
    if len(left) != len(right):
        return [f"row counts differ: {len(left)} != {len(right)}"]
    problems = []
    for left_row, right_row in zip(sorted(left, key=_sort_key), sorted(right, key=_sort_key), strict=True):
        differing = [
            f"{column}: {a!r} != {b!r}"
            for column, a, b in zip(columns, left_row, right_row, strict=True)
            if not _same_value(a, b)
        ]
        if differing:
            problems.append(f"row {dict(zip(columns, left_row, strict=True))}: " + "; ".join(differing))
        if len(problems) >= limit:
            break
    return problems


def fetch(path: Path, sql: str) -> tuple[list[str], list[tuple]]:
    with duckdb.connect(str(path), read_only=True) as connection:
        relation = connection.sql(sql)
        return [description[0] for description in relation.description], relation.fetchall()
