"""plan_sync (the diff computed in the warehouse) against the Python reference, read_audience + compute_diff,
over random audiences and snapshots: duplicate and missing keys, addresses that only Python's view of
whitespace and Unicode can judge, rejected and hash-less snapshot rows, all modes, full resyncs."""

from __future__ import annotations

from typing import Any

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reverse_etl.diff import compute_diff, plan_sync, read_audience
from reverse_etl.models import Record, Reject, SnapshotRow, SyncConfig, SyncMode
from reverse_etl.state import StateStore
from tests.reverse_etl.sync_fixtures import person, write_audience

KEYS = [f"p{i:05d}" for i in range(6)]
EMAILS = [
    "user@example.com",
    "USER@Example.com",  # the same person, another spelling: moved only if the lower-cased address differs
    "other@example.org",
    " padded@example.com ",  # trimmed in Python
    "\u00a0nbsp@example.com",  # Python's strip() removes a no-break space, SQL's trim() does not
    "caf\u00e9@example.com",  # non-ASCII: judged in Python
    "not-an-email",
    "a@b.c",  # one-letter top-level domain: invalid
    "two@@example.com",
    "tab\t@example.com",
    "",
    None,
]

row_strategy = st.fixed_dictionaries(
    {
        "key": st.one_of(st.sampled_from(KEYS), st.none()),
        "email": st.sampled_from(EMAILS),
        "offer": st.sampled_from(["A", "B", None]),
        "consent": st.booleans(),
    }
)
snapshot_strategy = st.dictionaries(
    st.sampled_from(KEYS),
    st.tuples(
        st.sampled_from(["same", "other", None]),
        st.sampled_from(["synced", "rejected"]),
        st.sampled_from(EMAILS[:3]),
    ),
)


def _summary(records: list[Record]) -> list[tuple[Any, ...]]:
    return [(r.key, r.email, r.fields, r.row_hash, r.consent) for r in records]


def _rows(rows: list[SnapshotRow]) -> list[tuple[Any, ...]]:
    return [(r.key, r.row_hash, r.status, r.email) for r in rows]


def _rejects(rejects: list[Reject]) -> list[tuple[str, str | None]]:
    return [(r.key, r.code) for r in rejects]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(row_strategy, max_size=10),
    snapshot=snapshot_strategy,
    mode=st.sampled_from(list(SyncMode)),
    full=st.booleans(),
    consent_column=st.booleans(),
)
def test_plan_in_the_warehouse_equals_the_python_diff(
    rows: list[dict[str, Any]],
    snapshot: dict[str, tuple[str | None, str, str]],
    mode: SyncMode,
    full: bool,
    consent_column: bool,
) -> None:
    con = duckdb.connect(":memory:")
    audience = [
        person(i, person_id=r["key"], email=r["email"], offer=r["offer"], is_subscribable=r["consent"])
        for i, r in enumerate(rows)
    ]
    write_audience(con, audience)
    config = SyncConfig(
        destination="d",
        mode=mode,
        consent_column="is_subscribable" if consent_column else None,
        consent_gated=not consent_column,
    )
    state = StateStore(con)
    records, invalid = read_audience(con, config)
    hashes = {r.key: r.row_hash for r in records}
    for key, (which, status, email) in snapshot.items():
        row_hash = {"same": hashes.get(key, "gone"), "other": "stale", None: None}[which]
        con.execute(
            "insert into reverse_etl.snapshot values ('d', ?, ?, ?, ?, null)", [key, row_hash, email, status]
        )

    expected = compute_diff(records, state.snapshot("d"), mode, full=full)
    planned = plan_sync(con, config, state.snapshot_table, full=full)

    assert _summary(planned.diff.inserts) == _summary(expected.inserts)
    assert _summary(planned.diff.changes) == _summary(expected.changes)
    assert _summary(planned.diff.retries) == _summary(expected.retries)
    assert _summary(planned.diff.resends) == _summary(expected.resends)
    assert _rows(planned.diff.removals) == _rows(expected.removals)
    assert _rows(planned.diff.moved) == _rows(expected.moved)
    assert _rows(planned.diff.rekeyed) == _rows(expected.rekeyed)
    assert planned.diff.readdressed == expected.readdressed
    assert _rejects(planned.invalid) == _rejects(invalid)
    assert planned.audience_size == len(records)
