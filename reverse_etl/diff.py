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


def read_audience(con: duckdb.DuckDBPyConnection, config: SyncConfig) -> tuple[list[Record], list[Reject]]:
    """The mapped audience and the rows that cannot be sent (no key, bad email, duplicate key)."""
    if not _RELATION.match(config.audience_relation):
        raise ValueError(f"bad audience relation name {config.audience_relation!r}")
    columns = [config.key_column, config.email_column, *(m.column for m in config.fields)]
    if config.consent_column:
        columns.append(config.consent_column)
    select = ", ".join(_quote(c) for c in columns)
    rows = con.execute(
        f"select {select} from {config.audience_relation} order by {_quote(config.key_column)}"
    ).fetchall()
    records: list[Record] = []
    invalid: list[Reject] = []
    seen: set[str] = set()
    n = len(config.fields)
    for row in rows:
        key = None if row[0] is None else str(row[0])
        email = (row[1] or "").strip()
        if key is None:
            invalid.append(Reject("", None, "missing_key", "row without a key"))
            continue
        if key in seen:
            invalid.append(Reject(key, None, "duplicate_key", "key appears more than once"))
            continue
        seen.add(key)
        if not email or len(email) > 254 or not _EMAIL.match(email):
            invalid.append(Reject(key, None, "invalid_email", "missing or malformed email"))
            continue
        fields = {m.field: normalize(v) for m, v in zip(config.fields, row[2 : 2 + n], strict=True)}
        consent = bool(row[2 + n]) if config.consent_column else config.consent_gated
        records.append(Record(key, email, fields, hash_fields(email, fields), consent))
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
