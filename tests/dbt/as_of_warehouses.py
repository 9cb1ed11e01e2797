"""Warehouses for the as-of and point-in-time tests: one generated landing zone, built whole and cut back.

Both test modules need the same full build, so builds are cached for the session by name (each module's
fixture calls `built_warehouse`), and every test pays for each dbt run once. Builds run models and seeds
only (no data tests: other modules run those) and only what the marts and ML models need.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb

from datagen import GeneratorConfig, generate
from personalize.dbt import run_dbt
from personalize.settings import Settings
from tests.dbt.raw_truncation import truncate_landing_zone

CUSTOMERS = 300
SEED = 23
# The generator's data runs to 2025-12-31. AS_OF is two months earlier, so orders are refunded and
# cancelled, CRM records change and identities link after it; TRAINING_CUTOFF is the latest ML cutoff
# of a build as of AS_OF (AS_OF - ml_horizon_days, default 90).
AS_OF = date(2025, 10, 31)
TRAINING_CUTOFF = date(2025, 8, 2)
BUILD_SELECTION = ("+path:dbt_project/models/marts", "+path:dbt_project/models/ml")

# Money is summed in floating point, so two builds of the same data may differ in the last digits.
ABSOLUTE_TOLERANCE = 1e-4


@functools.cache
def _landing_zone(base: Path) -> Path:
    raw_dir = base / "raw"
    generate(GeneratorConfig(customers=CUSTOMERS, seed=SEED, out=raw_dir, format="csv"))
    return raw_dir


@functools.cache
def built_warehouse(base: Path, name: str, cut_at: date | None, as_of: date) -> Path:
    """The warehouse built from the landing zone (cut back to the end of `cut_at` when given) as of `as_of`."""
    raw_dir = _landing_zone(base)
    if cut_at is not None:
        cut_dir = base / f"raw_cut_{cut_at.isoformat()}"
        truncate_landing_zone(raw_dir, cut_dir, cut_at)
        raw_dir = cut_dir
    settings = Settings(raw_dir=raw_dir, duckdb_path=base / f"{name}.duckdb")
    run_dbt(
        ["build", "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test",
         "--select", *BUILD_SELECTION],
        settings,
        vars_json=json.dumps({"as_of": as_of.isoformat()}),
        capture=True,
    )  # fmt: skip
    return settings.duckdb_path


def mart_relations(base: Path) -> list[tuple[str, str]]:
    """(schema, table) of every table model under models/marts, from the dbt manifest (`dbt ls`)."""
    settings = Settings(raw_dir=_landing_zone(base), duckdb_path=base / "ls.duckdb")
    output = run_dbt(
        ["ls", "--quiet", "--resource-type", "model", "--select", "path:dbt_project/models/marts",
         "--output", "json"],
        settings,
        capture=True,
    )  # fmt: skip
    relations = []
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        node = json.loads(line)
        if node["config"]["materialized"] == "ephemeral":
            continue
        relations.append((node["config"]["schema"], node["alias"] or node["name"]))
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
