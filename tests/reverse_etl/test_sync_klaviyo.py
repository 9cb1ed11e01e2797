"""The sync engine against the Klaviyo emulator: bulk import jobs, consent via bulk subscribe only, faults."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from reverse_etl.destinations import KlaviyoDestination
from reverse_etl.destinations import klaviyo as klaviyo_module
from reverse_etl.destinations.klaviyo import _PREFIX
from reverse_etl.engine import erase, sync
from reverse_etl.models import IDENTITY_FIELDS, BatchResult, Record, Reject, SyncConfig, SyncMode
from reverse_etl.state import StateStore
from reverse_etl.testing import EspEmulator, FaultKind, FaultSpec, RateLimit
from tests.reverse_etl.sync_fixtures import klaviyo, klaviyo_config, people, person, warehouse, write_audience

__all__ = ["warehouse"]

IMPORT = "/api/profile-bulk-import-jobs"
SUBSCRIBE = "/api/profile-subscription-bulk-create-jobs"
Warehouse = tuple[duckdb.DuckDBPyConnection, Path]


@pytest.fixture
def esp(monkeypatch: pytest.MonkeyPatch) -> Iterator[EspEmulator]:
    with EspEmulator(job_delay=0.0, klaviyo_rate_limits=False) as emulator:
        monkeypatch.setenv("KLAVIYO_API_KEY", emulator.klaviyo_api_key)
        yield emulator


def expected_profiles(rows: list[dict[str, Any]]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        r["email"]: (
            r["first_name"],
            {m.column: r[m.column] for m in IDENTITY_FIELDS if m.column != "first_name"},
        )
        for r in rows
    }


def profiles(esp: EspEmulator) -> dict[str, tuple[str, dict[str, Any]]]:
    esp.wait_idle()
    return {e: (p.attributes.get("first_name"), p.properties) for e, p in esp.klaviyo.profiles().items()}


def test_first_run_second_run_and_one_change(esp: EspEmulator, warehouse: Warehouse) -> None:
    con, _ = warehouse
    rows = people(range(250))
    write_audience(con, rows)
    lines: list[str] = []
    first = sync(con, klaviyo_config(), klaviyo(esp, max_profiles=100), progress=lines.append)
    assert (first.inserts, first.confirmed, first.outcome) == (250, 250, "success")
    assert len(esp.klaviyo.jobs()) == 3 and lines[-1] == "klaviyo: 250/250 sent"
    assert profiles(esp) == expected_profiles(rows)
    assert StateStore(con).pending_jobs("klaviyo") == []

    second = sync(con, klaviyo_config(), klaviyo(esp, max_profiles=100))
    assert (second.inserts, second.changes, second.sent) == (0, 0, 0)
    assert esp.stats.count("POST", IMPORT) == 3

    rows[42] = person(42, churn_band="very_high")
    write_audience(con, rows)
    third = sync(con, klaviyo_config(), klaviyo(esp))
    assert (third.changes, third.confirmed) == (1, 1)
    assert esp.klaviyo.jobs()[-1].total_count == 1
    assert profiles(esp) == expected_profiles(rows)
    assert max(esp.klaviyo.creates.values()) == 1


def test_consent_only_through_bulk_subscribe_for_consenting_new_people(
    esp: EspEmulator, warehouse: Warehouse
) -> None:
    con, _ = warehouse
    rows = people(range(40))  # is_subscribable: even ids only
    write_audience(con, rows)
    sync(con, klaviyo_config(), klaviyo(esp))
    esp.wait_idle()
    changes = esp.klaviyo.subscription_changes
    assert sorted(c.email for c in changes) == sorted(r["email"] for r in rows if r["is_subscribable"])
    assert {(c.channel, c.new) for c in changes} == {("email.marketing", "SUBSCRIBED")}
    assert esp.klaviyo.profile("user1@example.com").consent() == "NEVER_SUBSCRIBED"
    # Changes to existing people never re-subscribe them (they may have unsubscribed in Klaviyo since).
    write_audience(con, [{**r, "offer": "NEW"} for r in rows])
    assert sync(con, klaviyo_config(), klaviyo(esp)).changes == 40
    esp.wait_idle()
    assert len(esp.klaviyo.subscription_changes) == len(changes)
    # Without a consent column nobody is subscribed.
    write_audience(con, people(range(100, 110)))
    sync(con, SyncConfig(destination="klaviyo"), klaviyo(esp))
    esp.wait_idle()
    assert len(esp.klaviyo.subscription_changes) == len(changes)


def test_jobs_respect_the_measured_byte_limit(esp: EspEmulator, warehouse: Warehouse) -> None:
    con, _ = warehouse
    rows = [person(i, offer="x" * 2_000) for i in range(3_000)]  # ~6.5 MB encoded: must become 2+ jobs
    write_audience(con, rows)
    result = sync(con, klaviyo_config(), klaviyo(esp))
    assert result.confirmed == 3_000
    assert esp.stats.count("POST", IMPORT, 413) == 0
    assert len(esp.klaviyo.jobs()) == 2
    assert len(profiles(esp)) == 3_000


def test_batches_never_exceed_count_or_bytes() -> None:
    destination = KlaviyoDestination(klaviyo_dummy_config(max_profiles=7, max_bytes=4_000))
    records = [Record(f"k{i}", f"u{i}@example.com", {"offer": "y" * (i * 13 % 300)}, "h") for i in range(200)]
    batches = list(destination.batches(records))
    assert [r for b in batches for r, _ in b] == records
    for batch in batches:
        body = destination._envelope([encoded for _, encoded in batch])
        assert len(batch) <= 7 and len(body) <= 4_000
        doc = json.loads(body)
        assert len(doc["data"]["attributes"]["profiles"]["data"]) == len(batch)
    assert body.startswith(_PREFIX)


def klaviyo_dummy_config(**overrides: Any) -> Any:
    from reverse_etl.destinations import KlaviyoConfig

    return KlaviyoConfig(**overrides)


def test_import_errors_are_recorded_and_resent(esp: EspEmulator, warehouse: Warehouse) -> None:
    con, _ = warehouse
    rows = people(range(20))
    write_audience(con, rows)
    esp.faults.reject(
        ["user3@example.com"], vendor="klaviyo", code="suppressed", message="Suppressed", limit=1
    )
    first = sync(con, klaviyo_config(), klaviyo(esp))
    assert (first.confirmed, first.rejected, first.outcome) == (19, 1, "partial")
    ((_, key, status, code, message),) = StateStore(con).errors("klaviyo", first.run_id)
    assert (key, status, code, message) == ("p00003", None, "suppressed", "Suppressed")
    second = sync(con, klaviyo_config(), klaviyo(esp))
    assert (second.sent, second.confirmed, second.outcome) == (1, 1, "success")
    assert profiles(esp) == expected_profiles(rows)


def test_rate_limits_and_server_faults(
    esp: EspEmulator, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    con, _ = warehouse
    limited = EspEmulator(
        job_delay=0.0,
        klaviyo_rate_limits={
            "bulk_import_profiles": RateLimit(2, 100),
            "get_bulk_import_profiles_job": RateLimit(3, 100),
        },
    )
    with limited:
        monkeypatch.setenv("KLAVIYO_API_KEY", limited.klaviyo_api_key)
        rows = people(range(300))
        write_audience(con, rows)
        limited.faults.queue(FaultSpec(FaultKind.UNAVAILABLE, path_prefix=IMPORT, method="POST", count=2))
        limited.faults.queue(FaultSpec(FaultKind.SERVER_ERROR, path_prefix=IMPORT, method="GET", count=2))
        limited.faults.queue(
            FaultSpec(FaultKind.RATE_LIMIT_NO_RETRY_AFTER, path_prefix=IMPORT, count=1, retry_after=0)
        )
        result = sync(con, klaviyo_config(), klaviyo(limited, max_profiles=60))
        assert (result.confirmed, result.outcome) == (300, "success")
        assert limited.stats.count(status=429) >= 1  # 5 jobs at 2/s: throttled, then waited out
        assert limited.faults.pending() == []
        assert profiles(limited) == expected_profiles(rows)


class _Crash(Exception):
    pass


class _CrashAfterSubmit(KlaviyoDestination):
    """Dies after the job ids are in state but before any job was polled (like a kill mid-run)."""

    def _finish(self, job_id: str, recs: list[Record], subscribe: set[str]) -> BatchResult:
        raise _Crash


def test_a_resumed_run_polls_pending_jobs_instead_of_resubmitting(
    esp: EspEmulator, warehouse: Warehouse
) -> None:
    con, _ = warehouse
    rows = people(range(90))
    write_audience(con, rows)
    with pytest.raises(_Crash):
        sync(con, klaviyo_config(), _CrashAfterSubmit(klaviyo(esp, max_profiles=40).config))
    # Every accepted job is recorded, also those still uploading when polling failed: three pending jobs,
    # nothing confirmed.
    assert len(StateStore(con).pending_jobs("klaviyo")) == 3
    assert StateStore(con).snapshot("klaviyo") == {}
    assert StateStore(con).runs("klaviyo")[-1][3] == "failed"
    resumed = sync(con, klaviyo_config(), klaviyo(esp, max_profiles=40))
    assert resumed.resumed_jobs == 3
    assert (resumed.inserts, resumed.sent) == (0, 0)  # the resumed jobs are confirmed before the diff
    assert len(esp.klaviyo.jobs()) == 3  # no job submitted twice
    assert StateStore(con).pending_jobs("klaviyo") == []
    assert profiles(esp) == expected_profiles(rows)
    esp.wait_idle()
    consenting = sorted(r["email"] for r in rows if r["is_subscribable"])
    assert sorted(c.email for c in esp.klaviyo.subscription_changes) == consenting


def test_mirror_mode_is_refused(esp: EspEmulator, warehouse: Warehouse) -> None:
    con, _ = warehouse
    write_audience(con, people(range(2)))
    config = SyncConfig(destination="klaviyo", mode=SyncMode.MIRROR)
    with pytest.raises(ValueError, match="mirror"):
        sync(con, config, klaviyo(esp))


def test_dry_run_sends_zero_requests(esp: EspEmulator, warehouse: Warehouse) -> None:
    con, _ = warehouse
    write_audience(con, people(range(10)))
    result = sync(con, klaviyo_config(), klaviyo(esp), dry_run=True)
    assert (result.inserts, result.outcome) == (10, "dry_run")
    sample = result.samples[0]
    assert sample["attributes"]["email"] == "user0@example.com"
    assert "subscriptions" not in json.dumps(sample)
    assert esp.stats.snapshot().requests.total() == 0


def test_erase_requests_deletion_jobs(esp: EspEmulator, warehouse: Warehouse) -> None:
    con, _ = warehouse
    write_audience(con, people(range(4)))
    sync(con, klaviyo_config(), klaviyo(esp))
    assert erase(con, klaviyo_config(), klaviyo(esp), ["user2@example.com"]) == {
        "user2@example.com": "requested"
    }
    esp.wait_idle()
    assert [(e.email, e.found) for e in esp.klaviyo.erasures] == [("user2@example.com", True)]
    assert esp.klaviyo.profile("user2@example.com") is None
    assert "p00002" not in StateStore(con).snapshot("klaviyo")


class _ThirdUploadFails(KlaviyoDestination):
    """The third upload raises (an unexpected error, not an HTTP failure) while the first job is polled."""

    uploads = 0

    def _submit(
        self, batch: list[tuple[Record, bytes]]
    ) -> Iterator[tuple[str | None, list[Record], BatchResult]]:
        self.uploads += 1
        if self.uploads == 3:
            raise _Crash
        yield from super()._submit(batch)


def test_a_failing_run_leaves_jobs_still_polled_pending_at_once(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    con, _ = warehouse
    rows = people(range(120))
    write_audience(con, rows)
    with EspEmulator(job_delay=2.0, klaviyo_rate_limits=False) as slow:
        monkeypatch.setenv("KLAVIYO_API_KEY", slow.klaviyo_api_key)
        started = time.monotonic()
        with pytest.raises(_Crash):
            sync(con, klaviyo_config(), _ThirdUploadFails(klaviyo(slow, max_profiles=40).config))
        # The first job was being polled (it completes only after 2 s): the run did not wait for it.
        assert time.monotonic() - started < 1.5
        assert len(StateStore(con).pending_jobs("klaviyo")) == 2 and StateStore(con).snapshot("klaviyo") == {}
        assert slow.wait_idle(10)
        resumed = sync(con, klaviyo_config(), klaviyo(slow, max_profiles=40, job_timeout=30.0))
        assert (resumed.outcome, resumed.resumed_jobs, resumed.sent) == ("success", 2, 40)
        assert len(slow.klaviyo.jobs()) == 3  # the two pending jobs were polled, not submitted again
        assert profiles(slow) == expected_profiles(rows)


class _OneBadProfile(KlaviyoDestination):
    """A profile the spec refuses (unknown attribute), which makes the whole job a 400."""

    def encode(self, record: Record) -> bytes:
        encoded = super().encode(record)
        if record.email != "user11@example.com":
            return encoded
        body = orjson.loads(encoded)
        body["attributes"]["propertes"] = {"typo": True}
        return orjson.dumps(body)


def test_a_400_job_is_split_so_one_bad_profile_cannot_sink_it(esp: EspEmulator, warehouse: Warehouse) -> None:
    con, _ = warehouse
    rows = people(range(16))
    write_audience(con, rows)
    result = sync(con, klaviyo_config(), _OneBadProfile(klaviyo(esp).config))
    assert (result.confirmed, result.rejected) == (15, 1)
    assert esp.stats.count("POST", IMPORT, 400) == 5  # 16 -> 8 -> 4 -> 2 -> 1
    ((_, key, status, code, _),) = StateStore(con).errors("klaviyo", result.run_id)
    assert (key, status, code) == ("p00011", 400, "invalid")
    assert set(profiles(esp)) == {r["email"] for r in rows} - {"user11@example.com"}


def test_a_failed_subscribe_is_not_confirmed_and_is_retried(esp: EspEmulator, warehouse: Warehouse) -> None:
    con, _ = warehouse
    rows = people(range(10))
    write_audience(con, rows)
    esp.faults.queue(FaultSpec(FaultKind.UNAVAILABLE, path_prefix=SUBSCRIBE, count=None))
    first = sync(con, klaviyo_config(), klaviyo(esp))
    consenting = sorted(r["person_id"] for r in rows if r["is_subscribable"])
    assert (first.confirmed, first.failed) == (5, 5)
    assert sorted(e[1] for e in StateStore(con).errors("klaviyo", first.run_id)) == consenting
    esp.faults.clear()
    second = sync(con, klaviyo_config(), klaviyo(esp))
    assert (second.inserts, second.confirmed, second.outcome) == (5, 5, "success")
    esp.wait_idle()
    assert sorted(c.email for c in esp.klaviyo.subscription_changes) == sorted(
        r["email"] for r in rows if r["is_subscribable"]
    )


class _OneSubscribeRequestFails(KlaviyoDestination):
    """The bulk-subscribe request carrying user4@example.com fails for good; the others go through."""

    def _subscribe_part(self, part: list[Record]) -> Reject | None:
        if any(r.email == "user4@example.com" for r in part):
            return Reject("", 503, "subscribe_failed", "unavailable")
        return super()._subscribe_part(part)


def test_only_the_people_of_a_failed_subscribe_request_are_retried(
    esp: EspEmulator, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    con, _ = warehouse
    rows = people(range(20))  # ten consenting people: five subscribe requests of two, sent concurrently
    write_audience(con, rows)
    monkeypatch.setattr(klaviyo_module, "MAX_SUBSCRIBE", 2)
    first = sync(con, klaviyo_config(), _OneSubscribeRequestFails(klaviyo(esp).config))
    assert (first.confirmed, first.failed) == (18, 2)
    esp.wait_idle()
    subscribed_first = sorted(c.email for c in esp.klaviyo.subscription_changes)
    assert len(subscribed_first) == 8 and "user4@example.com" not in subscribed_first
    second = sync(con, klaviyo_config(), klaviyo(esp))
    assert (second.inserts, second.confirmed, second.outcome) == (2, 2, "success")
    esp.wait_idle()
    # Everyone consenting is subscribed exactly once: the requests that succeeded are not repeated.
    assert sorted(c.email for c in esp.klaviyo.subscription_changes) == sorted(
        r["email"] for r in rows if r["is_subscribable"]
    )


def test_a_job_that_cannot_be_polled_stays_pending_for_the_next_run(
    esp: EspEmulator, warehouse: Warehouse
) -> None:
    con, _ = warehouse
    rows = people(range(12))
    write_audience(con, rows)
    outage = esp.faults.queue(FaultSpec(FaultKind.SERVER_ERROR, path_prefix=IMPORT, method="GET", count=None))
    first = sync(con, klaviyo_config(), klaviyo(esp))
    assert (first.confirmed, first.failed, first.outcome) == (0, 12, "partial")
    assert [len(records) for _, records in StateStore(con).pending_jobs("klaviyo")] == [12]
    esp.faults.remove(outage)
    second = sync(con, klaviyo_config(), klaviyo(esp))
    assert (second.resumed_jobs, second.confirmed, second.sent, second.outcome) == (1, 12, 0, "success")
    assert len(esp.klaviyo.jobs()) == 1
    assert profiles(esp) == expected_profiles(rows)


def test_a_cancelled_import_job_is_dropped_and_its_rows_sent_again(
    esp: EspEmulator, warehouse: Warehouse
) -> None:
    """A job Klaviyo cancelled imported nothing and never will: it leaves the pending jobs (it used to be
    polled, and its rows counted as failed, on every run for ever) and the next run sends its rows again."""
    con, _ = warehouse
    rows = people(range(6))
    write_audience(con, rows)
    esp.klaviyo.cancel_next_jobs = 1
    first = sync(con, klaviyo_config(), klaviyo(esp))
    assert (first.confirmed, first.failed, first.outcome) == (0, 6, "partial")
    assert StateStore(con).pending_jobs("klaviyo") == []
    second = sync(con, klaviyo_config(), klaviyo(esp))
    assert (second.resumed_jobs, second.confirmed, second.failed, second.outcome) == (0, 6, 0, "success")
    assert profiles(esp) == expected_profiles(rows)


def test_a_person_whose_key_changes_is_not_subscribed_again(esp: EspEmulator, warehouse: Warehouse) -> None:
    """A person_id changes when identity groups merge; Klaviyo already has the address, so the person is
    not new there, and subscribing them again would lift an unsubscribe they made in Klaviyo since."""
    con, _ = warehouse
    rows = people(range(4))  # is_subscribable: even ids
    write_audience(con, rows)
    sync(con, klaviyo_config(), klaviyo(esp))
    subscribed = len(esp.klaviyo.subscription_changes)
    assert subscribed == 2
    rekeyed = [dict(r, person_id="pNEW0") if r["person_id"] == "p00000" else r for r in rows]
    write_audience(con, [*rekeyed, person(4)])  # p00004: new and consenting
    result = sync(con, klaviyo_config(), klaviyo(esp))
    esp.wait_idle()
    assert (result.inserts, result.confirmed, result.outcome) == (2, 2, "success")
    assert [c.email for c in esp.klaviyo.subscription_changes[subscribed:]] == ["user4@example.com"]


def test_a_resumed_job_acts_on_consent_and_erasures_as_they_are_now(
    esp: EspEmulator, warehouse: Warehouse
) -> None:
    """A run that cannot confirm its import job leaves it pending, and a later run finishes it. Meanwhile
    p00000 opted out and p00002 asked for erasure; both consented when the job was submitted, so it was to
    subscribe them. The resumed job subscribes neither, p00000 is then unsubscribed, and p00002, deleted
    while the job was still pending, is erased again once the job confirms it: an import that finishes
    after a deletion re-creates the profile. p00004 only left the audience (say, capped): it keeps its
    subscription, which would otherwise never be made (its confirmed row is unchanged when it returns)."""
    con, _ = warehouse
    rows = people(range(6))  # p00000, p00002 and p00004 consent (is_subscribable)
    write_audience(con, rows)
    config = replace(
        klaviyo_config(),
        erasure_relation="activation.esp_erasures",
        opt_out_relation="activation.esp_opt_outs",
    )
    outage = esp.faults.queue(FaultSpec(FaultKind.SERVER_ERROR, path_prefix=IMPORT, method="GET", count=None))
    assert sync(con, config, klaviyo(esp)).confirmed == 0
    assert len(StateStore(con).pending_jobs("klaviyo")) == 1

    # dbt drops both from the audience and lists them; p00004 is capped.
    write_audience(con, [r for r in rows if r["person_id"] not in ("p00000", "p00002", "p00004")])
    con.execute("create or replace table activation.esp_opt_outs as select 'p00000' as person_id")
    con.execute("create or replace table activation.esp_erasures as select 'user2@example.com' as email")
    second = sync(con, config, klaviyo(esp))  # the first job still cannot be polled
    assert (second.erased, second.unsubscribed) == (1, 0)

    esp.faults.remove(outage)
    third = sync(con, config, klaviyo(esp))
    assert (third.resumed_jobs, third.erased, third.unsubscribed, third.outcome) == (2, 1, 1, "success")
    assert esp.wait_idle()
    changes = esp.klaviyo.subscription_changes
    assert {c.email for c in changes if c.new == "SUBSCRIBED"} == {"user4@example.com"}
    assert [(c.email, c.new) for c in changes if c.email == "user0@example.com"] == [
        ("user0@example.com", "UNSUBSCRIBED")
    ]
    assert [e.email for e in esp.klaviyo.erasures] == ["user2@example.com", "user2@example.com"]
    assert esp.klaviyo.profile("user2@example.com") is None
    assert sorted(StateStore(con).snapshot("klaviyo")) == ["p00001", "p00003", "p00004", "p00005"]

    fourth = sync(con, config, klaviyo(esp))  # nothing left to do
    assert (fourth.erased, fourth.unsubscribed, fourth.sent) == (0, 0, 0)


def test_a_consenting_persons_new_address_is_subscribed(esp: EspEmulator, warehouse: Warehouse) -> None:
    """Klaviyo keys profiles by address, so a changed email is a new profile. It used to be imported but
    never subscribed (only inserts counted as new). p00000 consents, p00001 does not; p00002 takes an
    address Klaviyo already holds for another person, which is not new and is not subscribed again."""
    con, _ = warehouse
    rows = people(range(4))
    write_audience(con, rows)
    sync(con, klaviyo_config(), klaviyo(esp))
    assert esp.wait_idle()
    before = len(esp.klaviyo.subscription_changes)
    rows[0] = person(0, email="new.address0@example.com")
    rows[1] = person(1, email="new.address1@example.com")
    rows[2] = person(2, email="user3@example.com")
    rows[3] = person(3, email="other3@example.com")
    write_audience(con, rows)
    result = sync(con, klaviyo_config(), klaviyo(esp))
    assert (result.changes, result.confirmed, result.outcome) == (4, 4, "success")
    assert esp.wait_idle()
    subscribed = [(c.email, c.new) for c in esp.klaviyo.subscription_changes[before:]]
    assert subscribed == [("new.address0@example.com", "SUBSCRIBED")]
    assert esp.klaviyo.profile("new.address0@example.com").consent("email.marketing") == "SUBSCRIBED"


class _ResumeFails(KlaviyoDestination):
    def resume(self, pending: Any, ctx: Any) -> Iterator[BatchResult]:
        raise _Crash


def test_erasures_do_not_wait_for_pending_jobs(esp: EspEmulator, warehouse: Warehouse) -> None:
    """A pending job that cannot be finished (here resuming it raises) must not hold an erasure back: the
    erasures run before the resumed jobs (and again after them)."""
    con, _ = warehouse
    rows = people(range(3))
    write_audience(con, rows)
    relations = {"erasure_relation": "activation.esp_erasures", "opt_out_relation": "activation.esp_opt_outs"}
    config = replace(klaviyo_config(), **relations)
    sync(con, config, klaviyo(esp))
    outage = esp.faults.queue(FaultSpec(FaultKind.SERVER_ERROR, path_prefix=IMPORT, method="GET", count=None))
    write_audience(con, [*rows, person(3)])
    sync(con, config, klaviyo(esp))  # p00003's job stays pending
    esp.faults.remove(outage)
    assert len(StateStore(con).pending_jobs("klaviyo")) == 1

    write_audience(con, [rows[0], rows[2], person(3)])
    con.execute("create or replace table activation.esp_erasures as select 'user1@example.com' as email")
    with pytest.raises(_Crash):
        sync(con, config, _ResumeFails(klaviyo(esp).config))
    assert esp.wait_idle()
    assert [e.email for e in esp.klaviyo.erasures] == ["user1@example.com"]
    assert esp.klaviyo.profile("user1@example.com") is None
