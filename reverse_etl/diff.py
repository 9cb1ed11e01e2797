"""Read the audience, map and hash it, and diff it against the last confirmed state (pure functions)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import duckdb

from reverse_etl.models import Record, Reject, SnapshotRow, SyncConfig, SyncMode

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,63}$")
_RELATION = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}$")


_PLAIN = frozenset({str, int, float, bool, type(None)})


def normalize(value: Any) -> Any:
    """JSON-safe, stable representation of a warehouse value."""
    if type(value) in _PLAIN or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def hash_fields(email: str, fields: dict[str, Any]) -> str:
    payload = json.dumps([email.strip().lower(), fields], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# Column types that arrive in Python as JSON-safe values; any other type is converted in SQL (decimals to
# double, everything else to text), so the per-row Python loop needs no per-value conversion.
_PLAIN_SQL_TYPES = frozenset(
    {"VARCHAR", "BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER",
     "FLOAT", "DOUBLE"}
)  # fmt: skip


def _plain_expression(column: str, sql_type: str) -> str:
    quoted = _quote(column)
    if sql_type in _PLAIN_SQL_TYPES:
        return quoted
    if sql_type.startswith("DECIMAL"):
        return f"{quoted}::double"
    return f"{quoted}::varchar"


def missing_columns(con: duckdb.DuckDBPyConnection, config: SyncConfig) -> list[str]:
    """Columns the config reads that the audience relation lacks (empty when it has them all)."""
    if not _RELATION.match(config.audience_relation):
        raise ValueError(f"bad audience relation name {config.audience_relation!r}")
    present = {
        str(row[0]) for row in con.execute(f"describe select * from {config.audience_relation}").fetchall()
    }
    wanted = [config.key_column, config.email_column, *(m.column for m in config.fields)]
    if config.consent_column:
        wanted.append(config.consent_column)
    return [c for c in wanted if c not in present]


def read_audience(con: duckdb.DuckDBPyConnection, config: SyncConfig) -> tuple[list[Record], list[Reject]]:
    """The mapped audience and the rows that cannot be sent (no key, bad email, duplicate key).

    The row hash is computed in SQL, over the lower-cased email and the mapped columns as text (a JSON
    list, so NULL and "" differ and values cannot run into each other): hashing a million rows in Python
    cost more than the rest of the read.
    """
    missing = missing_columns(con, config)
    if missing:
        raise ValueError(f"{config.audience_relation} has no column {', '.join(missing)}")
    relation = config.audience_relation
    merge_columns = [m.column for m in config.fields]
    types = {
        str(name): str(sql_type)
        for name, sql_type, *_ in con.execute(
            f"describe select {', '.join(_quote(c) for c in merge_columns) or '1'} from {relation}"
        ).fetchall()
    }
    selected = [
        _quote(config.key_column),
        _quote(config.email_column),
        *(_plain_expression(c, types[c]) for c in merge_columns),
    ]
    if config.consent_column:
        selected.append(_quote(config.consent_column))
    hashed = [f"lower(trim({_quote(config.email_column)}::varchar))"]
    hashed += [f"{_quote(c)}::varchar" for c in merge_columns]
    selected.append(f"sha256(to_json([{', '.join(hashed)}]))")
    con.execute("set enable_progress_bar = false")  # a terminal bar on a library call is noise
    rows = con.execute(
        f"select {', '.join(selected)} from {relation} order by {_quote(config.key_column)}"
    ).fetchall()
    records: list[Record] = []
    invalid: list[Reject] = []
    seen: set[str] = set()
    names = [m.field for m in config.fields]
    n = len(names)
    consent_at = 2 + n if config.consent_column else None
    gated = config.consent_gated
    valid_email = _EMAIL.match
    for row in rows:
        raw_key = row[0]
        if raw_key is None:
            invalid.append(Reject("", None, "missing_key", "row without a key"))
            continue
        key = raw_key if type(raw_key) is str else str(raw_key)
        if key in seen:
            invalid.append(Reject(key, None, "duplicate_key", "key appears more than once"))
            continue
        seen.add(key)
        email = (row[1] or "").strip()
        if not email or len(email) > 254 or not valid_email(email):
            invalid.append(Reject(key, None, "invalid_email", "missing or malformed email"))
            continue
        consent = gated if consent_at is None else bool(row[consent_at])
        records.append(Record(key, email, dict(zip(names, row[2 : 2 + n], strict=True)), row[-1], consent))
    return records, invalid


@dataclass
class Diff:
    inserts: list[Record] = field(default_factory=list)
    changes: list[Record] = field(default_factory=list)
    retries: list[Record] = field(default_factory=list)  # unchanged, but rejected last time
    removals: list[SnapshotRow] = field(default_factory=list)  # only filled in mirror mode
    moved: list[SnapshotRow] = field(default_factory=list)  # mirror mode: old address of a changed email
    resends: list[Record] = field(default_factory=list)  # full resync only: unchanged, sent again anyway

    @property
    def to_send(self) -> list[Record]:
        return [*self.inserts, *self.changes, *self.retries, *self.resends]


def compute_diff(
    audience: list[Record], snapshot: dict[str, SnapshotRow], mode: SyncMode, *, full: bool = False
) -> Diff:
    """Inserts, changes and retries; `full` also re-sends unchanged rows (still classified, so a person
    already in the destination is never treated as new, e.g. subscribed again)."""
    diff = Diff()
    present: set[str] = set()
    for record in audience:
        present.add(record.key)
        last = snapshot.get(record.key)
        if last is None or last.row_hash is None:
            diff.inserts.append(record)
        elif last.row_hash != record.row_hash:
            diff.changes.append(record)
            if mode is SyncMode.MIRROR and last.email and last.email.lower() != record.email.lower():
                diff.moved.append(last)
        elif last.status == "rejected":
            diff.retries.append(record)
        elif full:
            diff.resends.append(record)
    if mode is SyncMode.MIRROR:
        diff.removals = [row for key, row in sorted(snapshot.items()) if key not in present]
    return diff
