"""The sync engine against the Mailchimp emulator: diffing, consent, faults, rejects, mirror mode, erasure."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import pytest

from reverse_etl.destinations import MailchimpDestination
from reverse_etl.engine import erase, plan, sync
from reverse_etl.models import Record, SyncMode, email_digest
from reverse_etl.state import StateStore
from reverse_etl.testing import EspEmulator, FaultKind, FaultSpec
from tests.reverse_etl.sync_fixtures import (
    FAST_RETRY,
    LIST_ID,
    expected_merge_fields,
    mailchimp,
    mailchimp_config,
    members,
    people,
    person,
    warehouse,
    write_audience,
)

__all__ = ["warehouse"]  # the fixture, imported for pytest

BATCH = "/3.0/lists/{list_id}"
MEMBER = "/3.0/lists/{list_id}/members/{subscriber_hash}"


@pytest.fixture
def esp(monkeypatch: pytest.MonkeyPatch) -> Iterator[EspEmulator]:
    with EspEmulator(job_delay=0.0) as emulator:
        monkeypatch.setenv("MAILCHIMP_API_KEY", emulator.mailchimp_api_key)
        yield emulator


Warehouse = tuple[duckdb.DuckDBPyConnection, Path]


def test_first_run_sends_everyone_second_nothing_then_one_change(
    esp: EspEmulator, warehouse: Warehouse
) -> None:
    con, _ = warehouse
    rows = people(range(1234))
    write_audience(con, rows)
    lines: list[str] = []
    first = sync(con, mailchimp_config(), mailchimp(esp, batch_size=500), progress=lines.append)
    assert (first.inserts, first.confirmed, first.outcome) == (1234, 1234, "success")
    assert members(esp) == expected_merge_fields(rows)
    assert esp.stats.count("POST", BATCH) == 3  # 500 + 500 + 234
    assert lines[0].startswith("mailchimp: 1,234 audience rows: 1,234 inserts, 0 changes")
    assert lines[1] == "mailchimp: 0/1,234 sent" and lines[-1] == "mailchimp: 1,234/1,234 sent"
    assert all(m.status == "subscribed" for m in esp.mailchimp.members(LIST_ID).values())

    second = sync(con, mailchimp_config(), mailchimp(esp))
    assert (second.inserts, second.changes, second.sent) == (0, 0, 0)
    assert esp.stats.count("POST", BATCH) == 3

    rows[7] = person(7, offer="FREESHIP")
    rows[8] = person(8, updated_at="2026-11-20 00:00:00", row_hash="different")  # unmapped columns only
    write_audience(con, rows)
    third = sync(con, mailchimp_config(), mailchimp(esp))
    assert (third.inserts, third.changes, third.sent, third.confirmed) == (0, 1, 1, 1)
    assert esp.stats.count("POST", BATCH) == 4
    assert esp.mailchimp.member(LIST_ID, "user7@example.com").merge_fields["OFFER"] == "FREESHIP"
    assert members(esp) == expected_merge_fields(rows)
    assert max(esp.mailchimp.creates.values()) == 1
    history = StateStore(con).runs("mailchimp")
    assert [r[3] for r in history] == ["success"] * 3
    assert [r[8] for r in history] == [1234, 0, 1]  # confirmed per run


def test_never_changes_existing_members_status(esp: EspEmulator, warehouse: Warehouse) -> None:
    con, _ = warehouse
    esp.mailchimp.seed(LIST_ID, "user1@example.com", "unsubscribed", {"FNAME": "Old"})
    esp.mailchimp.seed(LIST_ID, "user2@example.com", "cleaned")
    write_audience(con, people(range(5)))
    result = sync(con, mailchimp_config(), mailchimp(esp))
    assert result.confirmed == 5
    assert esp.mailchimp.member(LIST_ID, "user1@example.com").status == "unsubscribed"
    assert esp.mailchimp.member(LIST_ID, "user1@example.com").merge_fields["FNAME"] == "First1"
    assert esp.mailchimp.member(LIST_ID, "user2@example.com").status == "cleaned"
    assert esp.mailchimp.member(LIST_ID, "user3@example.com").status == "subscribed"
    assert esp.mailchimp.status_changes == []


def test_people_outside_the_audience_are_never_sent(esp: EspEmulator, warehouse: Warehouse) -> None:
    con, _ = warehouse
    rows = [r for r in people(range(20)) if r["person_id"] not in ("p00003", "p00011")]  # opted out/erased
    write_audience(con, rows)
    sync(con, mailchimp_config(), mailchimp(esp))
    sent = set(esp.mailchimp.members(LIST_ID))
    assert "user3@example.com" not in sent and "user11@example.com" not in sent
    assert sent == {r["email"] for r in rows}


def test_rate_limit_storm_and_server_errors_end_in_the_right_state(
    esp: EspEmulator, warehouse: Warehouse
) -> None:
    con, _ = warehouse
    rows = people(range(600))
    write_audience(con, rows)
    esp.faults.queue(FaultSpec(FaultKind.RATE_LIMIT, path_prefix="/3.0/lists", count=6, retry_after=0))
    esp.faults.queue(FaultSpec(FaultKind.RATE_LIMIT_NO_RETRY_AFTER, path_prefix="/3.0/lists", count=2))
    esp.faults.queue(FaultSpec(FaultKind.SERVER_ERROR, path_prefix="/3.0/lists", count=2, apply=True))
    esp.faults.queue(FaultSpec(FaultKind.UNAVAILABLE, path_prefix="/3.0/lists", count=2))
    esp.faults.queue(FaultSpec(FaultKind.DROP, path_prefix="/3.0/lists", count=1, apply=True))
    esp.faults.queue(FaultSpec(FaultKind.TIMEOUT, path_prefix="/3.0/lists", count=1, delay=0.5))
    patient = replace(FAST_RETRY, max_attempts=20)  # 14 faults may all land on one batch
    result = sync(con, mailchimp_config(), mailchimp(esp, batch_size=100, max_connections=3, retry=patient))
    assert esp.faults.pending() == []  # every fault fired
    assert (result.confirmed, result.failed, result.outcome) == (600, 0, "success")
    assert esp.stats.count("POST", BATCH, 429) == 8
    assert members(esp) == expected_merge_fields(rows)
    assert max(esp.mailchimp.creates.values()) == 1  # a re-sent applied batch is an update, not a create
    assert sync(con, mailchimp_config(), mailchimp(esp)).sent == 0


def test_retry_after_is_honoured(esp: EspEmulator, warehouse: Warehouse) -> None:
    import time

    con, _ = warehouse
    write_audience(con, people(range(3)))
    esp.faults.queue(FaultSpec(FaultKind.RATE_LIMIT, path_prefix="/3.0/lists", count=1, retry_after=1))
    started = time.monotonic()
    result = sync(con, mailchimp_config(), mailchimp(esp))
    assert time.monotonic() - started >= 1.0
    assert result.confirmed == 3


def test_persistent_outage_commits_nothing_and_next_run_recovers(
    esp: EspEmulator, warehouse: Warehouse
) -> None:
    con, _ = warehouse
    rows = people(range(10))
    write_audience(con, rows)
    esp.faults.queue(FaultSpec(FaultKind.UNAVAILABLE, path_prefix="/3.0/lists", count=None))
    failed = sync(con, mailchimp_config(), mailchimp(esp))
    assert (failed.confirmed, failed.failed, failed.outcome) == (0, 10, "partial")
    assert StateStore(con).snapshot("mailchimp") == {}
    esp.faults.clear()
    recovered = sync(con, mailchimp_config(), mailchimp(esp))
    assert (recovered.inserts, recovered.confirmed) == (10, 10)
    assert members(esp) == expected_merge_fields(rows)


def test_per_record_rejects_are_recorded_and_resent(esp: EspEmulator, warehouse: Warehouse) -> None:
    con, _ = warehouse
    rows = people(range(30))
    write_audience(con, rows)
    esp.faults.reject(
        ["user4@example.com", "user9@example.com"], vendor="mailchimp", code="COMPLIANCE", limit=2
    )
    first = sync(con, mailchimp_config(), mailchimp(esp))
    assert (first.confirmed, first.rejected, first.outcome) == (28, 2, "partial")
    errors = StateStore(con).errors("mailchimp", first.run_id)
    assert sorted((e[1], e[2], e[3]) for e in errors) == [
        ("p00004", 200, "COMPLIANCE"),
        ("p00009", 200, "COMPLIANCE"),
    ]
    assert "user4@example.com" not in esp.mailchimp.members(LIST_ID)

    # Unchanged rows, but rejected last time: re-sent (the reject rule is used up, so they go through).
    assert [r.key for r in plan(con, mailchimp_config())[0].to_send] == ["p00004", "p00009"]
    second = sync(con, mailchimp_config(), mailchimp(esp))
    assert (second.inserts, second.sent, second.confirmed, second.outcome) == (2, 2, 2, "success")
    assert members(esp) == expected_merge_fields(rows)
    assert sync(con, mailchimp_config(), mailchimp(esp)).sent == 0


def test_invalid_rows_are_counted_not_sent(esp: EspEmulator, warehouse: Warehouse) -> None:
    con, _ = warehouse
    rows = [
        *people(range(5)),
        person(5, email="not-an-email"),
        person(6, email=None),
        person(1, email="d@x.io"),
    ]
    write_audience(con, rows)
    result = sync(con, mailchimp_config(), mailchimp(esp))
    assert (result.invalid, result.confirmed) == (3, 5)
    codes = sorted(e[3] for e in StateStore(con).errors("mailchimp", result.run_id))
    assert codes == ["duplicate_key", "invalid_email", "invalid_email"]
    assert set(esp.mailchimp.members(LIST_ID)) == {f"user{i}@example.com" for i in range(5)}


class _OneBadPayload(MailchimpDestination):
    """A member payload Mailchimp refuses as a whole-request 400 (a list is not a merge value)."""

    def payload(self, record: Record) -> dict[str, Any]:
        body = super().payload(record)
        if record.email == "user13@example.com":
            body["merge_fields"]["OFFER"] = ["not", "a", "string"]
        return body


def test_a_400_batch_is_split_so_one_bad_record_cannot_sink_it(
    esp: EspEmulator, warehouse: Warehouse
) -> None:
    con, _ = warehouse
    rows = people(range(40))
    write_audience(con, rows)
    destination = _OneBadPayload(mailchimp(esp).config)
    result = sync(con, mailchimp_config(), destination)
    assert (result.confirmed, result.rejected) == (39, 1)
    assert esp.stats.count("POST", BATCH, 400) == 7  # 40 -> 20 -> 10 -> 5 -> 3 -> 2 -> 1: one 400 per level
    (error,) = StateStore(con).errors("mailchimp", result.run_id)
    assert (error[1], error[2]) == ("p00013", 400)
    assert set(esp.mailchimp.members(LIST_ID)) == {r["email"] for r in rows} - {"user13@example.com"}


def test_concurrency_stays_within_the_connection_limit(esp: EspEmulator, warehouse: Warehouse) -> None:
    con, _ = warehouse
    rows = people(range(1000))
    write_audience(con, rows)
    esp.faults.queue(FaultSpec(FaultKind.SLOW, path_prefix="/3.0/lists", count=None, delay=0.05))
    result = sync(con, mailchimp_config(), mailchimp(esp, batch_size=50, max_connections=10))
    assert result.confirmed == 1000
    assert esp.stats.count(status=429) == 0
    assert members(esp) == expected_merge_fields(rows)


def test_mirror_mode_archives_leavers_and_upsert_mode_does_not(
    esp: EspEmulator, warehouse: Warehouse
) -> None:
    con, _ = warehouse
    rows = people(range(10))
    write_audience(con, rows)
    sync(con, mailchimp_config(SyncMode.MIRROR), mailchimp(esp))
    remaining = [r for r in rows if r["person_id"] not in ("p00002", "p00005")]
    write_audience(con, remaining)

    upsert = sync(con, mailchimp_config(SyncMode.UPSERT), mailchimp(esp))
    assert (upsert.removals, upsert.sent) == (0, 0)
    assert len(members(esp)) == 10

    mirror = sync(con, mailchimp_config(SyncMode.MIRROR), mailchimp(esp))
    assert (mirror.removals, mirror.removed) == (2, 2)
    assert members(esp) == expected_merge_fields(remaining)
    archived = esp.mailchimp.member(LIST_ID, "user2@example.com")
    assert archived is not None and archived.archived and archived.status == "subscribed"
    assert esp.mailchimp.consent_changes() == []
    assert sorted(c.email for c in esp.mailchimp.status_changes) == ["user2@example.com", "user5@example.com"]
    assert {c.kind for c in esp.mailchimp.status_changes} == {"archive"}
    assert sync(con, mailchimp_config(SyncMode.MIRROR), mailchimp(esp)).removals == 0

    # A leaver who comes back is re-added (un-archived) with the old status: still no consent change.
    write_audience(con, rows)
    back = sync(con, mailchimp_config(SyncMode.MIRROR), mailchimp(esp))
    assert back.inserts == 2
    assert members(esp) == expected_merge_fields(rows)
    assert esp.mailchimp.consent_changes() == []


def test_dry_run_sends_zero_requests(esp: EspEmulator, warehouse: Warehouse) -> None:
    con, _ = warehouse
    write_audience(con, [*people(range(50)), person(99, email="broken")])
    result = sync(con, mailchimp_config(SyncMode.MIRROR), mailchimp(esp), dry_run=True)
    assert (result.inserts, result.changes, result.removals, result.invalid) == (50, 0, 0, 1)
    assert result.outcome == "dry_run" and len(result.samples) == 3
    assert result.samples[0] == {
        "email_address": "user0@example.com",
        "status_if_new": "subscribed",
        "merge_fields": expected_merge_fields([person(0)])["user0@example.com"],
    }
    assert esp.stats.snapshot().requests.total() == 0
    assert StateStore(con).snapshot("mailchimp") == {}
    sync(con, mailchimp_config(), mailchimp(esp))
    write_audience(con, [person(0, first_name="Zed"), *people(range(1, 40))])
    before = esp.stats.snapshot().requests.total()
    again = sync(con, mailchimp_config(SyncMode.MIRROR), mailchimp(esp), dry_run=True)
    assert (again.inserts, again.changes, again.removals) == (0, 1, 10)
    assert esp.stats.snapshot().requests.total() == before


def test_erase_uses_delete_permanent_and_is_recorded(esp: EspEmulator, warehouse: Warehouse) -> None:
    con, _ = warehouse
    rows = people(range(5))
    write_audience(con, rows)
    sync(con, mailchimp_config(), mailchimp(esp))
    outcomes = erase(con, mailchimp_config(), mailchimp(esp), ["user1@example.com", "nobody@example.com"])
    assert outcomes == {"user1@example.com": "erased", "nobody@example.com": "not_found"}
    assert [e.email for e in esp.mailchimp.erasures] == ["user1@example.com"]
    assert "p00001" not in StateStore(con).snapshot("mailchimp")
    recorded = con.execute(
        "select email_sha256, outcome from reverse_etl.erasures order by outcome"
    ).fetchall()
    assert [o for _, o in recorded] == ["erased", "not_found"]
    assert all("@" not in sha for sha, _ in recorded)
    # The audience model drops erased people; the next run sends nothing for them.
    write_audience(con, [r for r in rows if r["person_id"] != "p00001"])
    assert sync(con, mailchimp_config(), mailchimp(esp)).sent == 0
    assert esp.mailchimp.member(LIST_ID, "user1@example.com") is None


def test_missing_api_key_is_an_error_without_leaking(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    con, _ = warehouse
    monkeypatch.delenv("MAILCHIMP_API_KEY", raising=False)
    write_audience(con, people(range(2)))
    with EspEmulator() as emulator, pytest.raises(RuntimeError, match="MAILCHIMP_API_KEY"):
        sync(con, mailchimp_config(), mailchimp(emulator))
    assert StateStore(con).runs("mailchimp")[-1][3] == "failed"


def test_mirror_mode_archives_the_old_address_of_a_changed_email(
    esp: EspEmulator, warehouse: Warehouse
) -> None:
    con, _ = warehouse
    rows = people(range(6))
    write_audience(con, rows)
    sync(con, mailchimp_config(SyncMode.MIRROR), mailchimp(esp))
    rows[3] = person(3, email="new.address3@example.com")
    write_audience(con, rows)
    result = sync(con, mailchimp_config(SyncMode.MIRROR), mailchimp(esp))
    assert (result.changes, result.confirmed, result.removed) == (1, 1, 1)
    assert members(esp) == expected_merge_fields(rows)
    assert esp.mailchimp.member(LIST_ID, "user3@example.com").archived
    assert StateStore(con).snapshot("mailchimp")["p00003"].email == "new.address3@example.com"
    assert esp.mailchimp.consent_changes() == []
    assert sync(con, mailchimp_config(SyncMode.MIRROR), mailchimp(esp)).sent == 0


def test_an_old_address_that_cannot_be_archived_is_tried_again(
    esp: EspEmulator, warehouse: Warehouse
) -> None:
    """The old address of a changed email is archived before the new one is sent. When the archive fails,
    the person's change waits (the snapshot keeps the old address), and the next run archives and sends.
    It used to send the new address first and then only record the failed archive: the snapshot held the
    new address, nothing tried again, and the old address stayed subscribed."""
    con, _ = warehouse
    rows = people(range(3))
    write_audience(con, rows)
    sync(con, mailchimp_config(SyncMode.MIRROR), mailchimp(esp))
    rows[1] = person(1, email="new.address1@example.com")
    write_audience(con, rows)
    esp.faults.queue(FaultSpec(FaultKind.SERVER_ERROR, path_prefix="/3.0/lists", method="DELETE", status=400))
    failed = sync(con, mailchimp_config(SyncMode.MIRROR), mailchimp(esp))
    assert (failed.changes, failed.sent, failed.failed, failed.outcome) == (1, 0, 1, "partial")
    assert not esp.mailchimp.member(LIST_ID, "user1@example.com").archived
    assert esp.mailchimp.member(LIST_ID, "new.address1@example.com") is None
    assert StateStore(con).snapshot("mailchimp")["p00001"].email == "user1@example.com"

    retried = sync(con, mailchimp_config(SyncMode.MIRROR), mailchimp(esp))
    assert (retried.changes, retried.confirmed, retried.removed, retried.outcome) == (1, 1, 1, "success")
    assert esp.mailchimp.member(LIST_ID, "user1@example.com").archived
    assert members(esp) == expected_merge_fields(rows)
    assert StateStore(con).snapshot("mailchimp")["p00001"].email == "new.address1@example.com"


def test_vendor_error_texts_are_stored_without_addresses(esp: EspEmulator, warehouse: Warehouse) -> None:
    """Mailchimp quotes the address when it refuses one ("... was permanently deleted and cannot be
    re-imported"); reverse_etl.errors keeps the reason with the address replaced by its digest."""
    con, _ = warehouse
    rows = people(range(3))
    write_audience(con, rows)
    sync(con, mailchimp_config(), mailchimp(esp))
    erase(con, mailchimp_config(), mailchimp(esp), ["user1@example.com"])
    result = sync(con, mailchimp_config(), mailchimp(esp))  # user1 is back in the audience: refused
    assert result.rejected == 1
    [(key, message)] = con.execute("select key, message from reverse_etl.errors").fetchall()
    assert key == "p00001" and "permanently deleted" in message
    assert (
        "@" not in message.replace("<sha256:", "")
        and f"<sha256:{email_digest('user1@example.com')}>" in message
    )


def test_a_person_whose_key_changes_keeps_their_membership(esp: EspEmulator, warehouse: Warehouse) -> None:
    """When identity groups merge, a person's person_id changes while their address stays. Mirror mode must
    not archive the address as the old key's removal (after upserting it under the new key, that archived a
    person still in the audience, and nothing ever brought them back); nor may the old address of a changed
    email be archived when another person in the audience has it now."""
    con, _ = warehouse
    rows = people(range(4))
    write_audience(con, rows)
    sync(con, mailchimp_config(SyncMode.MIRROR), mailchimp(esp))

    rekeyed = [dict(r, person_id="pNEW1") if r["person_id"] == "p00001" else r for r in rows]
    # p00002 takes p00003's address, and p00003 a new one: p00003's old address must stay subscribed.
    swapped = [
        dict(r, email="user3@example.com")
        if r["person_id"] == "p00002"
        else dict(r, email="user3.new@example.com")
        if r["person_id"] == "p00003"
        else r
        for r in rekeyed
    ]
    write_audience(con, swapped)
    result = sync(con, mailchimp_config(SyncMode.MIRROR), mailchimp(esp))
    assert (result.inserts, result.removals, result.outcome) == (1, 0, "success")
    assert members(esp) == expected_merge_fields(swapped)  # nobody in the audience is archived
    archived = {e for e, m in esp.mailchimp.members(LIST_ID).items() if m.archived}
    assert archived == {"user2@example.com"}  # p00002's old address: nobody has it now
    assert set(StateStore(con).snapshot("mailchimp")) == {"p00000", "pNEW1", "p00002", "p00003"}
    assert sync(con, mailchimp_config(SyncMode.MIRROR), mailchimp(esp)).sent == 0
