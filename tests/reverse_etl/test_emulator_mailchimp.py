"""The Mailchimp emulation: batch upsert, member endpoints, consent safety, erasure, connection limit."""

from __future__ import annotations

import threading
import uuid

import requests

from reverse_etl.testing import EspEmulator, FaultKind, FaultSpec
from reverse_etl.testing.common import subscriber_hash
from tests.reverse_etl.esp_helpers import batch, mailchimp_session, member

LIST = "a1b2c3d4e5"


def url(esp: EspEmulator, suffix: str = "") -> str:
    return f"{esp.mailchimp_url}/lists/{LIST}{suffix}"


def member_url(esp: EspEmulator, email: str, suffix: str = "") -> str:
    return url(esp, f"/members/{subscriber_hash(email)}{suffix}")


def test_batch_creates_then_updates(esp: EspEmulator, mc: requests.Session) -> None:
    first = mc.post(
        url(esp),
        json=batch(
            [
                member("ann@example.com", merge_fields={"FNAME": "Ann", "SEGMENT": "loyal"}, tags=["vip"]),
                member("Bob@Example.com", merge_fields={"FNAME": "Bob", "LTV": 12.5}),
            ]
        ),
    )
    assert first.status_code == 200
    body = first.json()
    assert (body["total_created"], body["total_updated"], body["error_count"]) == (2, 0, 0)
    assert {m["email_address"] for m in body["new_members"]} == {"ann@example.com", "Bob@Example.com"}
    assert body["new_members"][0]["status"] == "subscribed"
    assert body["new_members"][0]["id"] == subscriber_hash("ann@example.com")

    second = mc.post(
        url(esp),
        json=batch(
            [member("ann@example.com", merge_fields={"SEGMENT": "at_risk"}), member("carl@example.com")]
        ),
    ).json()
    assert (second["total_created"], second["total_updated"], second["error_count"]) == (1, 1, 0)
    assert second["updated_members"][0]["merge_fields"] == {"FNAME": "Ann", "SEGMENT": "at_risk"}

    members = esp.mailchimp.members(LIST)
    assert set(members) == {"ann@example.com", "bob@example.com", "carl@example.com"}
    assert members["ann@example.com"].merge_fields == {
        "FNAME": "Ann",
        "SEGMENT": "at_risk",
    }  # merged, not replaced
    assert members["ann@example.com"].tags == ("vip",)
    assert members["bob@example.com"].merge_fields == {"FNAME": "Bob", "LTV": 12.5}
    assert esp.mailchimp.creates == {
        (LIST, "ann@example.com"): 1,
        (LIST, "bob@example.com"): 1,
        (LIST, "carl@example.com"): 1,
    }
    assert esp.mailchimp.status_changes == []

    # The member endpoint sees the same state, keyed by the MD5 of the lower-cased address.
    got = mc.get(member_url(esp, "BOB@example.com"))
    assert got.status_code == 200
    assert got.json()["merge_fields"]["FNAME"] == "Bob"


def test_more_than_500_members_is_a_400_and_nothing_is_applied(
    esp: EspEmulator, mc: requests.Session
) -> None:
    members = [member(f"u{i}@example.com") for i in range(501)]
    response = mc.post(url(esp), json=batch(members))
    assert response.status_code == 400
    problem = response.json()
    assert problem["title"] == "Invalid Resource"
    assert problem["errors"][0]["field"] == "members"
    assert "500" in problem["errors"][0]["message"]
    assert esp.mailchimp.members(LIST) == {}
    # Exactly 500 is fine.
    assert mc.post(url(esp), json=batch(members[:500])).json()["total_created"] == 500


def test_per_member_errors_arrive_inside_a_200(esp: EspEmulator, mc: requests.Session) -> None:
    esp.faults.reject(
        ["blocked@example.com"], vendor="mailchimp", code="ERROR_GENERIC", message="Compliance hold"
    )
    response = mc.post(
        url(esp),
        json=batch(
            [
                member("ok@example.com"),
                member("not-an-email"),
                member("blocked@example.com"),
                member("trailing@dot."),
            ]
        ),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["total_created"] == 1
    assert body["error_count"] == 3
    errors = {e["email_address"]: e for e in body["errors"]}
    assert errors["not-an-email"]["error_code"] == "ERROR_GENERIC"
    assert "valid email" in errors["not-an-email"]["error"]
    assert errors["blocked@example.com"] == {
        "email_address": "blocked@example.com",
        "error": "Compliance hold",
        "error_code": "ERROR_GENERIC",
    }
    assert "trailing@dot." in errors
    assert set(esp.mailchimp.members(LIST)) == {"ok@example.com"}


def test_existing_members_without_update_existing_are_member_exists_errors(
    esp: EspEmulator, mc: requests.Session
) -> None:
    mc.post(url(esp), json=batch([member("ann@example.com", merge_fields={"FNAME": "Ann"})]))
    body = mc.post(
        url(esp), json=batch([member("ann@example.com", merge_fields={"FNAME": "X"})], update_existing=False)
    ).json()
    assert body["error_count"] == 1
    assert body["errors"][0]["error_code"] == "ERROR_CONTACT_EXISTS"
    assert esp.mailchimp.member(LIST, "ann@example.com").merge_fields == {"FNAME": "Ann"}


def test_status_if_new_never_changes_an_existing_members_status(
    esp: EspEmulator, mc: requests.Session
) -> None:
    # Someone who unsubscribed in Mailchimp itself, then is synced again as part of the audience.
    esp.mailchimp.seed(LIST, "gone@example.com", "unsubscribed")
    esp.mailchimp.seed(LIST, "pending@example.com", "pending")
    body = mc.post(
        url(esp),
        json=batch(
            [
                member("gone@example.com", status_if_new="subscribed", merge_fields={"FNAME": "G"}),
                member("pending@example.com", status_if_new="subscribed"),
            ]
        ),
    ).json()
    assert body["total_updated"] == 2
    assert {m["status"] for m in body["updated_members"]} == {"unsubscribed", "pending"}
    assert esp.mailchimp.member(LIST, "gone@example.com").status == "unsubscribed"
    assert esp.mailchimp.member(LIST, "gone@example.com").merge_fields == {"FNAME": "G"}
    assert esp.mailchimp.status_changes == []
    # Seeding is not a create by the client.
    assert esp.mailchimp.creates == {}

    # PUT with status_if_new is just as safe.
    put = mc.put(member_url(esp, "gone@example.com"), json=member("gone@example.com"))
    assert put.status_code == 200
    assert put.json()["status"] == "unsubscribed"
    assert esp.mailchimp.status_changes == []


def test_an_explicit_status_changes_an_existing_member_and_is_audited(
    esp: EspEmulator, mc: requests.Session
) -> None:
    esp.mailchimp.seed(LIST, "gone@example.com", "unsubscribed")
    body = mc.post(
        url(esp), json=batch([{"email_address": "gone@example.com", "status": "subscribed"}])
    ).json()
    assert body["updated_members"][0]["status"] == "subscribed"
    patch = mc.patch(member_url(esp, "gone@example.com"), json={"status": "unsubscribed"})
    assert patch.status_code == 200
    changes = esp.mailchimp.status_changes
    assert [(c.email, c.old_status, c.new_status, c.kind) for c in changes] == [
        ("gone@example.com", "unsubscribed", "subscribed", "status"),
        ("gone@example.com", "subscribed", "unsubscribed", "status"),
    ]
    assert changes[0].via == "POST /3.0/lists/{list_id}"
    assert changes[1].via == "PATCH /3.0/lists/{list_id}/members/{subscriber_hash}"
    assert esp.mailchimp.consent_changes() == changes


def test_put_upserts_and_patch_updates(esp: EspEmulator, mc: requests.Session) -> None:
    created = mc.put(
        member_url(esp, "dee@example.com"),
        json={
            "email_address": "dee@example.com",
            "status_if_new": "subscribed",
            "merge_fields": {"FNAME": "Dee"},
        },
    )
    assert created.status_code == 200
    assert created.json()["status"] == "subscribed"
    updated = mc.put(
        member_url(esp, "dee@example.com"),
        json={
            "email_address": "dee@example.com",
            "status_if_new": "pending",
            "merge_fields": {"SEGMENT": "new"},
        },
    )
    assert updated.json()["status"] == "subscribed"
    assert updated.json()["merge_fields"] == {"FNAME": "Dee", "SEGMENT": "new"}
    assert esp.mailchimp.creates == {(LIST, "dee@example.com"): 1}

    # PUT for a new member without any status, or with an address that does not match the hash, is a 400.
    missing = mc.put(member_url(esp, "eve@example.com"), json={"email_address": "eve@example.com"})
    assert missing.status_code == 400
    mismatch = mc.put(member_url(esp, "eve@example.com"), json=member("someone.else@example.com"))
    assert mismatch.status_code == 400
    assert mismatch.json()["errors"][0]["field"] == "email_address"

    # PATCH never creates.
    assert (
        mc.patch(member_url(esp, "eve@example.com"), json={"merge_fields": {"FNAME": "E"}}).status_code == 404
    )


def test_archive_then_readd_keeps_status(esp: EspEmulator, mc: requests.Session) -> None:
    esp.mailchimp.seed(LIST, "ann@example.com", "unsubscribed")
    deleted = mc.delete(member_url(esp, "ann@example.com"))
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert mc.get(member_url(esp, "ann@example.com")).json()["status"] == "archived"
    assert esp.mailchimp.member(LIST, "ann@example.com").archived

    # Re-adding an archived contact (even without update_existing) brings back its old status.
    body = mc.post(url(esp), json=batch([member("ann@example.com")], update_existing=False)).json()
    assert body["total_updated"] == 1
    assert body["updated_members"][0]["status"] == "unsubscribed"
    assert [(c.kind, c.old_status, c.new_status) for c in esp.mailchimp.status_changes] == [
        ("archive", "unsubscribed", "archived"),
        ("unarchive", "archived", "unsubscribed"),
    ]
    assert esp.mailchimp.consent_changes() == []
    assert mc.delete(member_url(esp, "nobody@example.com")).status_code == 404


def test_delete_permanent_erases_and_blocks_reimport(esp: EspEmulator, mc: requests.Session) -> None:
    mc.post(url(esp), json=batch([member("ann@example.com", merge_fields={"FNAME": "Ann"})]))
    erased = mc.post(member_url(esp, "ann@example.com", "/actions/delete-permanent"))
    assert erased.status_code == 204
    assert mc.get(member_url(esp, "ann@example.com")).status_code == 404
    assert esp.mailchimp.member(LIST, "ann@example.com") is None
    [erasure] = esp.mailchimp.erasures
    assert (erasure.vendor, erasure.email, erasure.list_id) == ("mailchimp", "ann@example.com", LIST)

    # Mailchimp refuses to re-import a permanently deleted address, in a batch and via PUT.
    body = mc.post(url(esp), json=batch([member("ann@example.com")])).json()
    assert body["error_count"] == 1
    assert "permanently deleted" in body["errors"][0]["error"]
    put = mc.put(member_url(esp, "ann@example.com"), json=member("ann@example.com"))
    assert put.status_code == 400
    assert put.json()["title"] == "Forgotten Email Not Subscribed"
    assert mc.post(member_url(esp, "ann@example.com", "/actions/delete-permanent")).status_code == 404
    assert esp.mailchimp.creates == {(LIST, "ann@example.com"): 1}


def test_auth_failures_are_problem_documents(esp: EspEmulator) -> None:
    for auth in (None, ("user", "wrong-key-us1")):
        response = requests.post(url(esp), json=batch([member("a@example.com")]), auth=auth, timeout=5)
        assert response.status_code == 401
        assert response.headers["Content-Type"].startswith("application/problem+json")
        problem = response.json()
        assert set(problem) == {"type", "title", "status", "detail", "instance"}
        assert problem["status"] == 401
        uuid.UUID(problem["instance"])
    assert esp.mailchimp.members(LIST) == {}
    # Any username works with the right key, and so does a bearer token.
    ok = requests.get(f"{esp.mailchimp_url}/ping", auth=("whatever", esp.mailchimp_api_key), timeout=5)
    assert ok.json() == {"health_status": "Everything's Chimpy!"}
    bearer = requests.get(
        f"{esp.mailchimp_url}/ping", headers={"Authorization": f"Bearer {esp.mailchimp_api_key}"}, timeout=5
    )
    assert bearer.status_code == 200


def test_batch_answers_can_be_trimmed_with_fields_or_exclude_fields(
    esp: EspEmulator, mc: requests.Session
) -> None:
    people = [member("ann@example.com"), member("bob@example.com"), member("not-an-email")]
    trimmed = mc.post(url(esp, "?exclude_fields=new_members,updated_members"), json=batch(people))
    assert trimmed.status_code == 200
    doc = trimmed.json()
    assert "new_members" not in doc and "updated_members" not in doc
    assert (doc["total_created"], doc["error_count"]) == (2, 1)
    assert [e["email_address"] for e in doc["errors"]] == ["not-an-email"]
    assert set(esp.mailchimp.members(LIST)) == {"ann@example.com", "bob@example.com"}  # applied in full

    people = [member("ann@example.com", merge_fields={"FNAME": "Ann"}), member("cy@example.com")]
    only = mc.post(url(esp, "?fields=updated_members.email_address,total_updated"), json=batch(people))
    assert only.json() == {"updated_members": [{"email_address": "ann@example.com"}], "total_updated": 1}
    people = [member("ann@example.com"), member("dee@example.com", merge_fields={"FNAME": "Dee"})]
    dropped = mc.post(url(esp, "?exclude_fields=new_members.merge_fields"), json=batch(people)).json()
    assert [m["email_address"] for m in dropped["new_members"]] == ["dee@example.com"]
    assert "merge_fields" not in dropped["new_members"][0] and "status" in dropped["new_members"][0]
    assert "merge_fields" in dropped["updated_members"][0]

    refused = mc.post(
        url(esp, "?fields=errors&exclude_fields=new_members"), json=batch([member("eve@example.com")])
    )
    assert refused.status_code == 400
    assert "eve@example.com" not in esp.mailchimp.members(LIST)  # the refused batch did nothing


def test_payload_shape_is_validated(esp: EspEmulator, mc: requests.Session) -> None:
    cases = {
        "members.item:0.merge_fields.fname": member(
            "a@example.com", merge_fields={"fname": "lower-case tag"}
        ),
        "members.item:0.merge_fields.WAY_TOO_LONG_TAG": member(
            "a@example.com", merge_fields={"WAY_TOO_LONG_TAG": 1}
        ),
        "members.item:0.merge_fields.VIP": member("a@example.com", merge_fields={"VIP": True}),
        "members.item:0.status_if_nwe": {"email_address": "a@example.com", "status_if_nwe": "subscribed"},
        "members.item:0.status": member("a@example.com", status="archived"),
        "members.item:0.email_address": {"status_if_new": "subscribed"},
    }
    for field, bad in cases.items():
        response = mc.post(url(esp), json=batch([bad]))
        assert response.status_code == 400, field
        assert field in [e["field"] for e in response.json()["errors"]], response.json()
    assert (
        mc.post(url(esp), data=b"{not json", headers={"Content-Type": "application/json"}).status_code == 400
    )
    assert mc.post(url(esp), json={"members": [], "update_existing": "yes"}).status_code == 400
    assert esp.mailchimp.members(LIST) == {}


def test_unknown_lists_are_404_when_lists_are_declared() -> None:
    with EspEmulator(mailchimp_lists=["known"]) as esp, mailchimp_session(esp) as mc:
        assert (
            mc.post(f"{esp.mailchimp_url}/lists/known", json=batch([member("a@example.com")])).status_code
            == 200
        )
        unknown = mc.post(f"{esp.mailchimp_url}/lists/typo", json=batch([member("a@example.com")]))
        assert unknown.status_code == 404
        assert unknown.json()["title"] == "Resource Not Found"
        assert mc.delete(f"{esp.mailchimp_url}/lists/known").status_code == 405


def test_list_members_pages(esp: EspEmulator, mc: requests.Session) -> None:
    mc.post(url(esp), json=batch([member(f"u{i}@example.com") for i in range(25)]))
    page = mc.get(url(esp, "/members"), params={"count": 10, "offset": 20}).json()
    assert page["total_items"] == 25
    assert [m["email_address"] for m in page["members"]] == [f"u{i}@example.com" for i in range(20, 25)]


def test_eleventh_concurrent_request_gets_429(esp: EspEmulator) -> None:
    # Hold every request for a while so 11 are in flight at once; the gate counts before the fault applies.
    handle = esp.faults.queue(FaultSpec(FaultKind.SLOW, path_prefix="/3.0/", count=None, delay=0.6))
    barrier = threading.Barrier(11)
    statuses: list[int] = []
    lock = threading.Lock()

    def call() -> None:
        with mailchimp_session(esp) as session:
            barrier.wait()
            status = session.get(f"{esp.mailchimp_url}/ping", timeout=10).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=call) for _ in range(11)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert sorted(statuses).count(429) >= 1
    assert statuses.count(200) == 10
    assert handle.fired == 10  # the refused request never reached the fault
    assert esp.stats.count("GET", "/3.0/ping", 429) == statuses.count(429)
    esp.faults.remove(handle)
    # The slots are released: the next request goes through.
    with mailchimp_session(esp) as session:
        assert session.get(f"{esp.mailchimp_url}/ping", timeout=5).status_code == 200


def test_limit_is_per_api_key(esp: EspEmulator) -> None:
    assert esp.mailchimp.max_connections == 10
    with EspEmulator(mailchimp_max_connections=1) as tight:
        tight.faults.queue(FaultSpec(FaultKind.SLOW, path_prefix="/3.0/", delay=0.5))
        results: list[int] = []
        holder = threading.Thread(
            target=lambda: results.append(
                requests.get(
                    f"{tight.mailchimp_url}/ping", auth=("u", tight.mailchimp_api_key), timeout=5
                ).status_code
            )
        )
        holder.start()
        while tight.faults.pending():  # wait until the first request holds the only slot
            threading.Event().wait(0.01)
        same_key = requests.get(f"{tight.mailchimp_url}/ping", auth=("u", tight.mailchimp_api_key), timeout=5)
        other_key = requests.get(f"{tight.mailchimp_url}/ping", auth=("u", "other-key"), timeout=5)
        holder.join(5)
        assert same_key.status_code == 429
        assert other_key.status_code == 401  # its own slot; then refused for the wrong key, not for the limit
        assert results == [200]
