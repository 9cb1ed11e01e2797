"""Read the audience, map and hash it, and diff it against the last confirmed state (pure functions)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
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


def _mapped_columns(con: duckdb.DuckDBPyConnection, config: SyncConfig) -> tuple[list[str], str, list[str]]:
    """The mapped columns as JSON-safe SQL expressions, the row hash expression, and the columns' types.

    The row hash is computed in SQL, over the lower-cased email and the mapped columns as text (a JSON
    list, so NULL and "" differ and values cannot run into each other): hashing a million rows in Python
    cost more than the rest of the read.
    """
    missing = missing_columns(con, config)
    if missing:
        raise ValueError(f"{config.audience_relation} has no column {', '.join(missing)}")
    merge_columns = [m.column for m in config.fields]
    types = {
        str(name): str(sql_type)
        for name, sql_type, *_ in con.execute(
            f"describe select {', '.join(_quote(c) for c in merge_columns) or '1'} "
            f"from {config.audience_relation}"
        ).fetchall()
    }
    hashed = [f"lower(trim({_quote(config.email_column)}::varchar))"]
    hashed += [f"{_quote(c)}::varchar" for c in merge_columns]
    return (
        [_plain_expression(c, types[c]) for c in merge_columns],
        f"sha256(to_json([{', '.join(hashed)}]))",
        [types[c] for c in merge_columns],
    )


def sql_string(text: str) -> str:
    """`text` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def sql_json_object(pairs: Sequence[tuple[str, str]]) -> str:
    """A SQL expression for the JSON object of (name, SQL expression) pairs, in that order.

    A struct encoded with to_json: half the CPU of json_object() for the same text.
    """
    if not pairs:
        return "'{}'::json"
    return f"to_json({{{', '.join(f'{sql_string(name)}: {expr}' for name, expr in pairs)}}})"


_FLOATING_SQL_TYPES = frozenset({"FLOAT", "DOUBLE"})


def _json_value(column: str, sql_type: str) -> str:
    """A plan column (already JSON-safe for Python) as the value Python's encoder would write for it.

    orjson writes a non-finite float as null where DuckDB's JSON writes NaN/Infinity (not JSON). Finite
    values need nothing: DuckDB writes the shortest text of the double Python receives (a FLOAT widened).
    """
    if sql_type in _FLOATING_SQL_TYPES or sql_type.startswith("DECIMAL"):
        return f"case when isfinite({column}) then {column} end"
    return column


# The relation's own row order (DuckDB scans preserve insertion order): which of two rows sharing a key wins.
_SOURCE_ORDER = "row_number() over () as source_order"


def _valid_email(raw: Any) -> str | None:
    """The trimmed address when it is one we may send, else None (Python's view of whitespace)."""
    email = (raw or "").strip()
    if not email or len(email) > 254 or not _EMAIL.match(email):
        return None
    return email


def read_audience(con: duckdb.DuckDBPyConnection, config: SyncConfig) -> tuple[list[Record], list[Reject]]:
    """The whole mapped audience and the rows that cannot be sent (no key, bad email, duplicate key).

    `plan_sync` computes the same diff without bringing unchanged rows into Python; this full read is for
    destinations that need every row (the file destination) and is the reference the planner is tested
    against.
    """
    fields, row_hash, _ = _mapped_columns(con, config)
    selected = [_quote(config.key_column), _quote(config.email_column), *fields]
    if config.consent_column:
        selected.append(_quote(config.consent_column))
    selected.append(row_hash)
    con.execute("set enable_progress_bar = false")  # a terminal bar on a library call is noise
    # Of rows sharing a key the first in the relation is kept, as plan_sync keeps it.
    rows = con.execute(
        f"select {', '.join(selected)} from (select *, {_SOURCE_ORDER} from {config.audience_relation}) "
        f"order by {_quote(config.key_column)}, source_order"
    ).fetchall()
    records: list[Record] = []
    invalid: list[Reject] = []
    seen: set[str] = set()
    names = [m.field for m in config.fields]
    n = len(names)
    consent_at = 2 + n if config.consent_column else None
    gated = config.consent_gated
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
        email = _valid_email(row[1])
        if email is None:
            invalid.append(Reject(key, None, "invalid_email", "missing or malformed email"))
            continue
        consent = gated if consent_at is None else bool(row[consent_at])
        records.append(Record(key, email, dict(zip(names, row[2 : 2 + n], strict=True)), row[-1], consent))
    return records, invalid


def withdrawn_consent_keys(
    con: duckdb.DuckDBPyConnection, config: SyncConfig, keys: Sequence[str]
) -> set[str]:
    """Which of `keys` the audience holds now with its consent column false. A person not in the audience
    (capped, in the control group) has not withdrawn anything; explicit opt-outs and erasures are their own
    relations (SyncConfig.opt_out_relation, erasure_relation)."""
    if not keys or not config.consent_column:
        return set()
    key = f"cast({_quote(config.key_column)} as varchar)"
    consents = f"coalesce({_quote(config.consent_column)}, false)"
    rows = con.execute(
        f"select {key} from {config.audience_relation} "
        f"where {key} in (select unnest(?::varchar[])) and not {consents}",
        [list(keys)],
    ).fetchall()
    return {row[0] for row in rows}


@dataclass
class Diff:
    inserts: list[Record] = field(default_factory=list)
    changes: list[Record] = field(default_factory=list)
    retries: list[Record] = field(default_factory=list)  # unchanged, but rejected last time
    removals: list[SnapshotRow] = field(default_factory=list)  # only filled in mirror mode
    moved: list[SnapshotRow] = field(default_factory=list)  # mirror mode: old address of a changed email
    # Mirror mode: keys that left the audience while their address stayed in it under another key (a
    # person_id changes when identity groups merge). Dropped from the snapshot, never archived: archiving
    # the address would take the person who still has it out of the list. For the same reason `moved` leaves
    # out an old address that another person in the audience now has.
    rekeyed: list[SnapshotRow] = field(default_factory=list)
    resends: list[Record] = field(default_factory=list)  # full resync only: unchanged, sent again anyway
    # Keys of `changes` whose address changed (any mode): to a destination keyed by address (Klaviyo) the
    # new address is a new profile, so it is new there, as an insert is.
    readdressed: list[str] = field(default_factory=list)

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
    kept_addresses = {record.email.lower() for record in audience}
    for record in audience:
        present.add(record.key)
        last = snapshot.get(record.key)
        if last is None or last.row_hash is None:
            diff.inserts.append(record)
        elif last.row_hash != record.row_hash:
            diff.changes.append(record)
            moved = last.email and last.email.lower() != record.email.lower()
            if moved:
                diff.readdressed.append(record.key)
            if mode is SyncMode.MIRROR and moved and last.email.lower() not in kept_addresses:
                diff.moved.append(last)
        elif last.status == "rejected":
            diff.retries.append(record)
        elif full:
            diff.resends.append(record)
    if mode is SyncMode.MIRROR:
        for key, row in sorted(snapshot.items()):
            if key not in present:
                kept = row.email is not None and row.email.lower() in kept_addresses
                (diff.rekeyed if kept else diff.removals).append(row)
    return diff


# An address of printable ASCII without whitespace needs no trimming, and on it the SQL pattern below
# accepts exactly what _EMAIL accepts; any other address is checked in Python (rare, so cheap).
_PLAIN_EMAIL_SQL = "[!-~]{1,254}"
_VALID_PLAIN_EMAIL_SQL = r"[^@]+@[^@]+\.[A-Za-z]{2,63}"


@dataclass
class Plan:
    """What a run must do, as `plan_sync` found it in the warehouse."""

    diff: Diff
    invalid: list[Reject]
    audience_size: int  # valid audience rows, changed or not


PayloadSql = Callable[[Sequence[tuple[str, str]]], str | None]


def plan_sync(
    con: duckdb.DuckDBPyConnection,
    config: SyncConfig,
    snapshot_table: str,
    *,
    full: bool = False,
    payload_sql: PayloadSql | None = None,
) -> Plan:
    """`compute_diff(read_audience(...), snapshot)` computed in the warehouse.

    The audience is hashed and joined to the state snapshot in SQL, and only rows that are sent, invalid or
    in need of a Python check come into Python: reading a million unchanged rows into Python and diffing
    them there cost ~20 s of CPU for an incremental sync. Same classification and the same order (inserts,
    changes, retries, resends, each in key order; removals in key order; of rows sharing a key, the first in
    the relation is kept).

    `payload_sql` (a destination's Destination.payload_sql): when it returns an expression, each record
    to send carries its fields encoded by the warehouse in `Record.fragment`, and `fields` is left empty.
    """
    fields, row_hash, types = _mapped_columns(con, config)
    key, email = _quote(config.key_column), _quote(config.email_column)
    consent = _quote(config.consent_column) if config.consent_column else "null"
    field_names = [f"f{i}" for i in range(len(fields))]
    names = [m.field for m in config.fields]
    encoded = None
    if payload_sql is not None:
        encoded = payload_sql(
            [
                (name, _json_value(column, sql_type))
                for name, column, sql_type in zip(names, field_names, types, strict=True)
            ]
        )
    # Only rows to send are encoded: the expression is evaluated after the diff has filtered them.
    field_list = (
        f", encode(({encoded})::varchar)" if encoded else "".join(f", {name}" for name in field_names)
    )
    n = 1 if encoded else len(fields)
    con.execute("set enable_progress_bar = false")
    counts = con.execute(
        f"""select count(*) filter (where key is null), count(*) filter (where key is not null),
                   count(distinct key) filter (where key is not null)
            from (select {key}::varchar as key from {config.audience_relation})"""
    ).fetchall()[0]
    missing_keys, keyed_rows, distinct_keys = int(counts[0]), int(counts[1]), int(counts[2])
    # Ranking rows that share a key needs the relation's row order, a single-threaded window over every
    # row; a relation without duplicate keys (esp_audience is tested unique) skips it.
    if keyed_rows == distinct_keys:
        source, key_rank, order_column = config.audience_relation, "1", ""
    else:
        source = f"(select *, {_SOURCE_ORDER} from {config.audience_relation})"
        key_rank = "row_number() over (partition by key order by source_order)"
        order_column = "source_order, "
    query = f"""
        with audience as (
            select {key} as raw_key, {key}::varchar as key, {email}::varchar as email, {order_column}
                   {"".join(f"{expr} as {name}, " for expr, name in zip(fields, field_names, strict=True))}
                   {consent} as consent, {row_hash} as row_hash
            from {source}
        ),
        checked as (
            select *,
                   {key_rank} as key_rank,
                   case
                       when not coalesce(regexp_full_match(email, '{_PLAIN_EMAIL_SQL}'), false) then 'python'
                       when regexp_full_match(email, '{_VALID_PLAIN_EMAIL_SQL}') then 'ok'
                       else 'bad'
                   end as email_check
            from audience
            where key is not null
        ),
        snapshot as (select * from {snapshot_table} where destination = $destination),
        -- The addresses the audience keeps that SQL can judge (the others reach Python anyway).
        kept_addresses as (
            select distinct lower(email) as address from checked where key_rank = 1 and email_check = 'ok'
        ),
        classified as (
            select checked.*,
                   case
                       when checked.key_rank > 1 then null
                       when snapshot.key is null or snapshot.row_hash is null then 'insert'
                       when snapshot.row_hash <> checked.row_hash then 'change'
                       when snapshot.last_status = 'rejected' then 'retry'
                       when $full then 'resend'
                   end as kind,
                   snapshot.row_hash as last_hash, snapshot.last_status, snapshot.email as last_email,
                   coalesce(lower(snapshot.email) in (select address from kept_addresses), false)
                       as last_email_kept
            from checked
            left join snapshot on snapshot.key = checked.key and checked.key_rank = 1
        )
        select raw_key, key, email{field_list}, consent, row_hash, key_rank, email_check, kind,
               last_hash, last_status, last_email, last_email_kept
        from classified
        where kind is not null or key_rank > 1 or email_check <> 'ok'
        union all
        -- mirror mode: who left the audience (no row with the key, or its kept row has a bad address)
        select null, snapshot.key, null{", null" * n}, null, null, 1, 'ok', 'remove',
               snapshot.row_hash, snapshot.last_status, snapshot.email,
               coalesce(lower(snapshot.email) in (select address from kept_addresses), false)
        from snapshot
        where $mirror and not exists (
            select 1 from checked
            where checked.key = snapshot.key and checked.key_rank = 1 and checked.email_check <> 'bad'
        )
        order by raw_key, key_rank
    """
    mirror = config.mode is SyncMode.MIRROR
    parameters = {"destination": config.destination, "full": full, "mirror": mirror}
    rows = con.execute(query, parameters).fetchall()

    gated = config.consent_gated
    has_consent = config.consent_column is not None
    diff = Diff()
    by_kind = {"insert": diff.inserts, "change": diff.changes, "retry": diff.retries, "resend": diff.resends}
    invalid: list[Reject] = []
    # Snapshot rows that left (or whose address moved), with whether SQL found their address kept; decided
    # once the addresses only Python can judge are known too (python_addresses).
    leaving: list[tuple[SnapshotRow, bool]] = []
    moving: list[tuple[SnapshotRow, bool]] = []
    python_addresses: set[str] = set()
    for row in rows:
        key_text, raw_email = row[1], row[2]
        key_rank, email_check, kind, last_hash, last_status, last_email, last_email_kept = row[5 + n :]
        if kind == "remove":
            leaving.append((SnapshotRow(key_text, last_hash, last_status, last_email), last_email_kept))
            continue
        if key_rank > 1:
            invalid.append(Reject(key_text, None, "duplicate_key", "key appears more than once"))
            continue
        address = raw_email if email_check == "ok" else _valid_email(raw_email)
        if address is None:
            invalid.append(Reject(key_text, None, "invalid_email", "missing or malformed email"))
            if mirror and email_check == "python" and last_status is not None:
                # In the snapshot, but its address failed the Python check: gone from the audience.
                leaving.append((SnapshotRow(key_text, last_hash, last_status, last_email), last_email_kept))
            continue
        if email_check == "python":
            python_addresses.add(address.lower())
        if kind is None:
            continue  # checked in Python, valid and unchanged
        consents = bool(row[3 + n]) if has_consent else gated
        if encoded:
            record = Record(key_text, address, {}, row[4 + n], consents, row[3])
        else:
            record = Record(
                key_text, address, dict(zip(names, row[3 : 3 + n], strict=True)), row[4 + n], consents
            )
        by_kind[kind].append(record)
        if kind == "change" and last_email and last_email.lower() != address.lower():
            diff.readdressed.append(key_text)
            if mirror:
                moving.append((SnapshotRow(key_text, last_hash, last_status, last_email), last_email_kept))

    def kept(row: SnapshotRow, kept_in_sql: bool) -> bool:
        return kept_in_sql or (row.email is not None and row.email.lower() in python_addresses)

    for snapshot_row, kept_in_sql in leaving:
        (diff.rekeyed if kept(snapshot_row, kept_in_sql) else diff.removals).append(snapshot_row)
    diff.moved = [snapshot_row for snapshot_row, kept_in_sql in moving if not kept(snapshot_row, kept_in_sql)]
    invalid += [Reject("", None, "missing_key", "row without a key")] * missing_keys
    diff.removals.sort(key=lambda row: row.key)
    diff.rekeyed.sort(key=lambda row: row.key)
    bad_kept = sum(1 for r in invalid if r.code == "invalid_email")
    return Plan(diff, invalid, distinct_keys - bad_kept)
