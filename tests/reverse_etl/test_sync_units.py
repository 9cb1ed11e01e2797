"""Pure pieces of the sync engine: diffing, hashing, retry timing, state transitions, privacy of logs."""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests

from reverse_etl.destinations import DeliveryContext, FileConfig, FileDestination
from reverse_etl.destinations.klaviyo import job_state
from reverse_etl.diff import compute_diff, read_audience
from reverse_etl.engine import sync
from reverse_etl.models import (
    BatchResult,
    FieldMapping,
    Record,
    Reject,
    SnapshotRow,
    SyncConfig,
    SyncMode,
    email_digest,
)
from reverse_etl.retry import RetryPolicy, TransportError, backoff_delay, send, wait_seconds
from reverse_etl.state import StateStore
from reverse_etl.testing import EspEmulator
from tests.reverse_etl.sync_fixtures import mailchimp, mailchimp_config, people, person, write_audience


def rec(key: str, h: str) -> Record:
    return Record(key, f"{key}@example.com", {}, h)


def test_diff_categories_and_modes() -> None:
    snapshot = {
        "a": SnapshotRow("a", "h1", "synced", "a@example.com"),
        "b": SnapshotRow("b", "h2", "synced", "b@example.com"),
        "c": SnapshotRow("c", "h3", "rejected", "c@example.com"),  # unchanged but rejected: re-sent
        "d": SnapshotRow("d", None, "rejected", "d@example.com"),  # never accepted: still an insert
        "gone": SnapshotRow("gone", "h9", "synced", "gone@example.com"),
    }
    audience = [rec("a", "h1"), rec("b", "CHANGED"), rec("c", "h3"), rec("d", "h4"), rec("new", "h5")]
    upsert = compute_diff(audience, snapshot, SyncMode.UPSERT)
    assert [r.key for r in upsert.inserts] == ["d", "new"]
    assert [r.key for r in upsert.changes] == ["b"]
    assert [r.key for r in upsert.retries] == ["c"]
    assert upsert.removals == []
    mirror = compute_diff(audience, snapshot, SyncMode.MIRROR)
    assert [r.key for r in mirror.removals] == ["gone"]
    assert [r.key for r in mirror.to_send] == ["d", "new", "b", "c"]
    full = compute_diff(audience, snapshot, SyncMode.MIRROR, full=True)
    # A full resync re-sends the unchanged "a" too, but who is new (and so may be subscribed) is unchanged.
    assert [r.key for r in full.to_send] == ["d", "new", "b", "c", "a"]
    assert [r.key for r in full.inserts] == ["d", "new"] and [r.key for r in full.resends] == ["a"]
    assert [r.key for r in full.removals] == ["gone"]


class _FailsAfterThreeBatches(FileDestination):
    def upsert(self, records: Sequence[Record], ctx: DeliveryContext) -> Iterator[BatchResult]:
        for start in range(0, 30, 10):
            yield BatchResult(confirmed=list(records[start : start + 10]))
        raise ConnectionAbortedError("the destination went away")


def test_confirmed_batches_are_committed_when_a_run_fails_midway(tmp_path: Path) -> None:
    con = duckdb.connect(":memory:")
    write_audience(con, people(range(50)))
    config = SyncConfig(destination="file")
    with pytest.raises(ConnectionAbortedError):
        sync(con, config, _FailsAfterThreeBatches(FileConfig(tmp_path)))
    state = StateStore(con)
    assert sorted(state.snapshot("file")) == [f"p{i:05d}" for i in range(30)]  # grouped, yet kept
    assert state.runs("file")[-1][3] == "failed"
    resumed = sync(con, config, FileDestination(FileConfig(tmp_path)))
    assert (resumed.inserts, resumed.sent, resumed.outcome) == (20, 20, "success")


def test_audience_values_reach_destinations_as_json_types_and_the_hash_sees_them() -> None:
    con = duckdb.connect(":memory:")
    con.execute("create schema activation")
    con.execute(
        "create table activation.esp_audience as select 'p1' as person_id, 'a@example.com' as email, "
        "12.50::decimal(10, 2) as offer, date '2026-01-02' as first_name"
    )
    config = SyncConfig(
        destination="x", fields=(FieldMapping("offer", "OFFER"), FieldMapping("first_name", "FNAME"))
    )
    (before,), _ = read_audience(con, config)
    assert before.fields == {"OFFER": 12.5, "FNAME": "2026-01-02"}
    con.execute("update activation.esp_audience set offer = 12.51")
    (after,), _ = read_audience(con, config)
    assert after.row_hash != before.row_hash


def test_hash_covers_mapped_fields_and_email_only() -> None:
    con = duckdb.connect(":memory:")
    config = SyncConfig(
        destination="x", fields=(FieldMapping("first_name", "FNAME"), FieldMapping("offer", "OFFER"))
    )
    write_audience(con, [person(1)])
    (before,), _ = read_audience(con, config)
    write_audience(
        con, [person(1, segment="other", rec_1_url="https://x.example/", updated_at="2027-01-01 00:00:00")]
    )
    (unmapped,), _ = read_audience(con, config)
    write_audience(con, [person(1, offer="NEW")])
    (mapped,), _ = read_audience(con, config)
    write_audience(con, [person(1, email="other@example.com")])
    (moved,), _ = read_audience(con, config)
    assert before.fields == {"FNAME": "First1", "OFFER": "OFFER1"}
    assert before.row_hash == unmapped.row_hash
    assert len({before.row_hash, mapped.row_hash, moved.row_hash}) == 3


def test_state_keeps_the_confirmed_hash_of_a_rejected_change() -> None:
    con = duckdb.connect(":memory:")
    state = StateStore(con)
    state.commit_batch("d", "r1", [rec("k", "h1")], [], [], [])
    state.commit_batch("d", "r2", [], [(rec("k", "h2"), Reject("k", 400, "bad", "no"))], [], [])
    assert state.snapshot("d")["k"] == SnapshotRow("k", "h1", "rejected", "k@example.com")
    diff = compute_diff([rec("k", "h1")], state.snapshot("d"), SyncMode.UPSERT)
    assert [r.key for r in diff.retries] == ["k"]
    state.commit_batch("d", "r3", [rec("k", "h1")], [], [], [])
    assert state.snapshot("d")["k"].status == "synced"
    assert [(e[0], e[3]) for e in state.errors("d")] == [("r2", "bad")]


def test_pending_jobs_read_back_in_both_stored_forms() -> None:
    """Jobs are stored as columns now; a job an earlier version stored (a dict per record) still resumes."""
    con = duckdb.connect(":memory:")
    state = StateStore(con)
    records = [rec("a", "h1"), rec("b", "h2")]
    state.add_pending_job("klaviyo", "r1", "old", [_to_state(records[0], False), _to_state(records[1], True)])
    state.add_pending_job("klaviyo", "r1", "new", job_state(records, {"b"}))
    expected = [
        {"key": "a", "email": "a@example.com", "row_hash": "h1", "consent": False, "subscribe": False},
        {"key": "b", "email": "b@example.com", "row_hash": "h2", "consent": False, "subscribe": True},
    ]
    assert dict(state.pending_jobs("klaviyo")) == {"old": expected, "new": expected}
    state.commit_batch("klaviyo", "r2", records, [], [], [], job_ids=["old", "new"])
    assert state.pending_jobs("klaviyo") == []


def _to_state(record: Record, subscribe: bool) -> dict[str, Any]:
    """A pending job's record as versions before job_state stored it."""
    return {
        "key": record.key,
        "email": record.email,
        "row_hash": record.row_hash,
        "consent": record.consent,
        "subscribe": subscribe,
    }


class _Response:
    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.status_code = status
        self.headers = requests.structures.CaseInsensitiveDict(headers or {})

    def close(self) -> None:
        pass


def test_wait_honours_retry_after_and_rate_limit_reset() -> None:
    policy = RetryPolicy(base_delay=0.01, max_retry_after=60)
    assert 3 <= wait_seconds(policy, _Response(429, {"Retry-After": "3"}), 1) <= 3.02  # type: ignore[arg-type]
    assert 7 <= wait_seconds(policy, _Response(429, {"X-RateLimit-Reset": "7"}), 1) <= 7.02  # type: ignore[arg-type]
    epoch = str(int(time.time()) + 5)
    assert 3.5 <= wait_seconds(policy, _Response(429, {"X-RateLimit-Reset": epoch}), 1) <= 5.1  # type: ignore[arg-type]
    http_date = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert 8 <= wait_seconds(policy, _Response(429, {"Retry-After": http_date}), 1) <= 10.1  # type: ignore[arg-type]
    assert wait_seconds(policy, _Response(429, {"Retry-After": "9999"}), 1) <= 60.02  # type: ignore[arg-type]
    slow = RetryPolicy(base_delay=1.0, max_delay=8.0)
    for attempt, (low, high) in enumerate([(0.5, 1), (1, 2), (2, 4), (4, 8), (4, 8)], start=1):
        assert all(low <= backoff_delay(slow, attempt) <= high for _ in range(50))


class _Script:
    """A fake session answering from a script of statuses and exceptions."""

    def __init__(self, script: list[Any]) -> None:
        self.script = list(script)
        self.calls = 0

    def request(self, method: str, url: str, **kwargs: Any) -> _Response:
        self.calls += 1
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        return _Response(item, {"Retry-After": "2"} if item == 429 else {})


def test_send_retries_transient_failures_only() -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(max_attempts=6, base_delay=0.1)
    session = _Script([requests.ConnectionError(), requests.Timeout(), 503, 429, 200])
    response = send(session, "POST", "http://x/y", policy, sleep=sleeps.append)  # type: ignore[arg-type]
    assert response.status_code == 200 and session.calls == 5
    assert 2 <= sleeps[3] <= 2.1  # Retry-After
    assert send(_Script([400]), "POST", "http://x", policy, sleep=sleeps.append).status_code == 400  # type: ignore[arg-type]
    assert send(_Script([500] * 6), "POST", "http://x", policy, sleep=sleeps.append).status_code == 500  # type: ignore[arg-type]
    with pytest.raises(TransportError):
        send(_Script([requests.Timeout()] * 6), "GET", "http://x", policy, sleep=sleeps.append)  # type: ignore[arg-type]


def test_logs_never_contain_emails_or_keys(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    con = duckdb.connect(":memory:")
    write_audience(con, people(range(6)))
    with EspEmulator() as esp, caplog.at_level(logging.DEBUG):
        monkeypatch.setenv("MAILCHIMP_API_KEY", esp.mailchimp_api_key)
        esp.faults.reject(["user2@example.com"], vendor="mailchimp")
        result = sync(con, mailchimp_config(), mailchimp(esp))
    assert result.rejected == 1
    assert email_digest("user2@example.com") in caplog.text
    assert "@example.com" not in caplog.text
    assert esp.mailchimp_api_key not in caplog.text
