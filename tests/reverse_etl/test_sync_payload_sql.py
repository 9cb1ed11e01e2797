"""Payloads encoded by the warehouse (Destination.payload_sql -> Record.fragment) against the payloads Python
builds from Record.fields: over random values of every column type a mapping may read (text with quotes,
control characters and any Unicode, NULLs, non-finite and FLOAT-widened numbers, decimals, dates), and field
names that need quoting, the bytes sent must decode to exactly what Python would have sent."""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import duckdb
import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reverse_etl.destinations import KlaviyoConfig, KlaviyoDestination
from reverse_etl.diff import plan_sync
from reverse_etl.models import FieldMapping, Record, SyncConfig
from reverse_etl.state import StateStore

# (column type, values): what a mapped column may hold.
TYPED_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "varchar": st.text(st.characters(exclude_categories=["Cs"]), max_size=12),
    "double": st.floats(allow_nan=True, allow_infinity=True),
    "float": st.floats(width=32, allow_nan=True, allow_infinity=True),
    "integer": st.integers(-(2**31), 2**31 - 1),
    "bigint": st.integers(-(2**63), 2**63 - 1),
    "boolean": st.booleans(),
    "decimal(12,3)": st.decimals(min_value=-(10**8), max_value=10**8, places=3, allow_nan=False),
    "date": st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
    "timestamp": st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
}
COLUMN_TYPES = list(TYPED_VALUES)
# Destination field names: Klaviyo's standard attributes go into `attributes`, the rest into `properties`.
FIELD_NAMES = [
    "first_name",
    "title",
    "image",
    "offer",
    "it's",
    'quo"te',
    "back\\slash",
    "properties",
    "email",
]


@st.composite
def audiences(draw: st.DrawFn) -> tuple[list[tuple[str, str, str]], list[list[Any]]]:
    names = draw(st.lists(st.sampled_from(FIELD_NAMES), unique=True, max_size=6))
    columns = [(f"c{i}", draw(st.sampled_from(COLUMN_TYPES)), name) for i, name in enumerate(names)]
    rows = draw(
        st.lists(
            st.tuples(*(st.one_of(st.none(), TYPED_VALUES[sql_type]) for _, sql_type, _ in columns)),
            min_size=1,
            max_size=6,
        )
    )
    return columns, [list(row) for row in rows]


def _literal(value: Any, sql_type: str) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # DuckDB reads 'nan', 'inf' and '-inf' as floating-point text
    if isinstance(value, Decimal):
        return str(value)
    return value


def _audience(
    con: duckdb.DuckDBPyConnection, columns: list[tuple[str, str, str]], rows: list[list[Any]]
) -> None:
    con.execute("create schema activation")
    defined = "".join(f", {column} {sql_type}" for column, sql_type, _ in columns)
    con.execute(f"create table activation.esp_audience (person_id varchar, email varchar{defined})")
    for i, row in enumerate(rows):
        values = [
            f"p{i}",
            f"user{i}@example.com",
            *(_literal(v, t) for v, (_, t, _) in zip(row, columns, strict=True)),
        ]
        casts = ", ".join(["?", "?", *(f"?::{t}" for _, t, _ in columns)])
        con.execute(f"insert into activation.esp_audience values ({casts})", values)


def _sent(destination: KlaviyoDestination, records: list[Record]) -> dict[str, Any]:
    return {r.key: orjson.loads(destination.encode(r)) for r in records}


# Every column type once, with the values most likely to differ between the encoders, on every run.
EDGE_CASES = (
    [(f"c{i}", t, name) for i, (t, name) in enumerate(zip(COLUMN_TYPES, FIELD_NAMES, strict=True))],
    [
        ['q"uo\\te\n\x00\x1f\u2028é😀', math.nan, 0.1, 2**31 - 1, -(2**63), True, Decimal("-0.125"),
         date(1, 1, 1), datetime(2026, 11, 22, 16, 0, 0, 123456)],
        ["", math.inf, -math.inf, 0, 0, False, Decimal("99999999.999"), date(9999, 12, 31),
         datetime(1, 1, 1)],
        [None] * len(COLUMN_TYPES),
    ],
)  # fmt: skip


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(audience=audiences())
@example(audience=EDGE_CASES)
def test_klaviyo_profiles_encoded_by_the_warehouse_equal_the_python_payloads(
    audience: tuple[list[tuple[str, str, str]], list[list[Any]]],
) -> None:
    columns, rows = audience
    con = duckdb.connect(":memory:")
    _audience(con, columns, rows)
    config = SyncConfig(destination="klaviyo", fields=tuple(FieldMapping(c, name) for c, _, name in columns))
    snapshot = StateStore(con).snapshot_table
    destination = KlaviyoDestination(KlaviyoConfig())

    in_python = plan_sync(con, config, snapshot).diff.inserts
    in_sql = plan_sync(con, config, snapshot, payload_sql=destination.payload_sql).diff.inserts

    assert [r.fragment for r in in_python] == [None] * len(rows)
    assert all(r.fragment is not None and r.fields == {} for r in in_sql)
    assert [(r.key, r.email, r.row_hash, r.consent) for r in in_sql] == [
        (r.key, r.email, r.row_hash, r.consent) for r in in_python
    ]
    assert _sent(destination, in_sql) == _sent(destination, in_python)
    # A dry run's sample payloads read the same either way.
    assert [orjson.loads(orjson.dumps(destination.payload(r))) for r in in_sql] == list(
        _sent(destination, in_python).values()
    )
