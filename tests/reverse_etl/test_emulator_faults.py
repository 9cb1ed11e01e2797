"""Fault injection and observability: every fault kind, applied-then-lost requests, counters, reset."""

from __future__ import annotations

import time

import pytest
import requests

from reverse_etl.testing import EspEmulator, FaultKind, FaultSpec
from reverse_etl.testing.stats import NO_RESPONSE
from tests.reverse_etl.esp_helpers import batch, import_job, member, profile

LIST = "L1"
BATCH_TEMPLATE = "/3.0/lists/{list_id}"
IMPORT_PATH = "/api/profile-bulk-import-jobs"


def post_batch(
    esp: EspEmulator, mc: requests.Session, *emails: str, timeout: float = 10
) -> requests.Response:
    return mc.post(
        f"{esp.mailchimp_url}/lists/{LIST}", json=batch([member(e) for e in emails]), timeout=timeout
    )


def test_429_with_retry_after(esp: EspEmulator, kl: requests.Session) -> None:
    esp.faults.queue(FaultSpec(FaultKind.RATE_LIMIT, path_prefix=IMPORT_PATH, retry_after=7))
    throttled = kl.post(esp.base_url + IMPORT_PATH, json=import_job([profile("a@example.com")]))
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "7"
    assert throttled.json()["errors"][0]["code"] == "throttled"
    esp.wait_idle()
    assert esp.klaviyo.profile_count() == 0
    assert kl.post(esp.base_url + IMPORT_PATH, json=import_job([profile("a@example.com")])).status_code == 202


def test_429_without_retry_after_carries_a_reset(esp: EspEmulator, mc: requests.Session) -> None:
    esp.faults.queue(FaultSpec(FaultKind.RATE_LIMIT_NO_RETRY_AFTER, path_prefix="/3.0/", retry_after=3))
    esp.faults.queue(FaultSpec(FaultKind.RATE_LIMIT_NO_RETRY_AFTER, path_prefix="/3.0/", retry_after=None))
    first = post_batch(esp, mc, "a@example.com")
    assert first.status_code == 429
    assert "Retry-After" not in first.headers
    assert first.headers["X-RateLimit-Reset"] == "3"
    assert first.json()["title"] == "Too Many Requests"
    bare = post_batch(esp, mc, "a@example.com")
    assert bare.status_code == 429
    assert "Retry-After" not in bare.headers and "X-RateLimit-Reset" not in bare.headers
    assert esp.mailchimp.members(LIST) == {}


def test_5xx_faults_fire_deterministically(esp: EspEmulator, mc: requests.Session) -> None:
    esp.faults.queue(
        FaultSpec(FaultKind.UNAVAILABLE, path_prefix="/3.0/lists", method="POST", skip=1, count=2)
    )
    esp.faults.queue(FaultSpec(FaultKind.SERVER_ERROR, path_prefix="/3.0/lists", method="POST"))
    esp.faults.queue(FaultSpec(FaultKind.SERVER_ERROR, path_prefix="/3.0/lists", status=502))
    statuses = [post_batch(esp, mc, f"u{i}@example.com").status_code for i in range(6)]
    assert statuses == [200, 503, 503, 500, 502, 200]
    assert set(esp.mailchimp.members(LIST)) == {"u0@example.com", "u5@example.com"}
    assert [f.kind for f in esp.faults.history] == [
        FaultKind.UNAVAILABLE,
        FaultKind.UNAVAILABLE,
        FaultKind.SERVER_ERROR,
        FaultKind.SERVER_ERROR,
    ]
    assert esp.faults.pending() == []
    # A method filter leaves other methods alone.
    esp.faults.queue(FaultSpec(FaultKind.SERVER_ERROR, path_prefix="/3.0/", method="GET"))
    assert post_batch(esp, mc, "x@example.com").status_code == 200
    assert mc.get(f"{esp.mailchimp_url}/ping").status_code == 500


def test_5xx_after_apply_changes_state(esp: EspEmulator, mc: requests.Session) -> None:
    esp.faults.queue(FaultSpec(FaultKind.SERVER_ERROR, path_prefix="/3.0/", apply=True))
    assert post_batch(esp, mc, "a@example.com").status_code == 500
    assert set(esp.mailchimp.members(LIST)) == {"a@example.com"}


def test_dropped_connection_before_apply_changes_nothing(esp: EspEmulator, mc: requests.Session) -> None:
    esp.faults.queue(FaultSpec(FaultKind.DROP, path_prefix="/3.0/lists"))
    with pytest.raises(requests.ConnectionError):
        post_batch(esp, mc, "a@example.com")
    assert esp.mailchimp.members(LIST) == {}
    assert esp.stats.count("POST", BATCH_TEMPLATE, NO_RESPONSE) == 1
    # The client reconnects and the retry is the first real create.
    assert post_batch(esp, mc, "a@example.com").json()["total_created"] == 1


def test_dropped_connection_after_apply_really_applies(esp: EspEmulator, mc: requests.Session) -> None:
    esp.faults.queue(FaultSpec(FaultKind.DROP, path_prefix="/3.0/lists", apply=True))
    with pytest.raises(requests.ConnectionError):
        post_batch(esp, mc, "a@example.com")
    assert set(esp.mailchimp.members(LIST)) == {"a@example.com"}
    # An upsert retry is safe: it updates, and the member was created once.
    retry = post_batch(esp, mc, "a@example.com").json()
    assert (retry["total_created"], retry["total_updated"]) == (0, 1)
    assert esp.mailchimp.creates == {(LIST, "a@example.com"): 1}


def test_dropped_klaviyo_import_after_apply_duplicates_the_job_on_retry(
    esp: EspEmulator, kl: requests.Session
) -> None:
    esp.faults.queue(FaultSpec(FaultKind.DROP, path_prefix=IMPORT_PATH, method="POST", apply=True))
    body = import_job([profile("a@example.com", {"N": 1})])
    with pytest.raises(requests.ConnectionError):
        kl.post(esp.base_url + IMPORT_PATH, json=body)
    retry = kl.post(esp.base_url + IMPORT_PATH, json=body)
    assert retry.status_code == 202
    esp.wait_idle()
    # The lost 202's job exists and ran: the retry made a second job (jobs are not idempotent) ...
    jobs = esp.klaviyo.jobs()
    assert [(j.status, j.completed_count) for j in jobs] == [("complete", 1), ("complete", 1)]
    assert jobs[1].id == retry.json()["data"]["id"]
    # ... but upserting by email kept the profile unique.
    assert esp.klaviyo.creates == {"a@example.com": 1}


def test_timeout_holds_past_the_client_timeout(esp: EspEmulator, mc: requests.Session) -> None:
    esp.faults.queue(FaultSpec(FaultKind.TIMEOUT, path_prefix="/3.0/lists", delay=1.5))
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        post_batch(esp, mc, "a@example.com", timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 1.4  # the client gave up; the server was still holding
    assert esp.mailchimp.members(LIST) == {}
    deadline = time.monotonic() + 5
    while esp.stats.count("POST", BATCH_TEMPLATE, NO_RESPONSE) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert esp.stats.count("POST", BATCH_TEMPLATE, NO_RESPONSE) == 1  # closed without a response


def test_timeout_after_apply(esp: EspEmulator, mc: requests.Session) -> None:
    esp.faults.queue(FaultSpec(FaultKind.TIMEOUT, path_prefix="/3.0/lists", delay=1.0, apply=True))
    with pytest.raises(requests.exceptions.ReadTimeout):
        post_batch(esp, mc, "a@example.com", timeout=0.3)
    assert set(esp.mailchimp.members(LIST)) == {"a@example.com"}


def test_slow_response(esp: EspEmulator, mc: requests.Session) -> None:
    esp.faults.queue(FaultSpec(FaultKind.SLOW, path_prefix="/3.0/", delay=0.4))
    started = time.monotonic()
    assert post_batch(esp, mc, "a@example.com").status_code == 200
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    assert post_batch(esp, mc, "b@example.com").status_code == 200
    assert time.monotonic() - started < 0.4


def test_reject_rules_limit_and_predicate(
    esp: EspEmulator, mc: requests.Session, kl: requests.Session
) -> None:
    once = esp.faults.reject(["a@example.com"], vendor="mailchimp", limit=1)
    esp.faults.reject(
        predicate=lambda email: email.endswith("@blocked.test"), vendor="klaviyo", code="banned"
    )
    assert post_batch(esp, mc, "a@example.com").json()["error_count"] == 1
    assert post_batch(esp, mc, "a@example.com").json()["total_created"] == 1
    assert once.rejected == ["a@example.com"]

    # The Klaviyo-only rule does not touch Mailchimp, and vice versa.
    assert post_batch(esp, mc, "x@blocked.test").json()["total_created"] == 1
    created = kl.post(
        esp.base_url + IMPORT_PATH, json=import_job([profile("x@blocked.test"), profile("y@example.com")])
    )
    esp.wait_idle()
    errors = kl.get(f"{esp.base_url}{IMPORT_PATH}/{created.json()['data']['id']}/import-errors").json()[
        "data"
    ]
    assert [e["attributes"]["code"] for e in errors] == ["banned"]
    assert set(esp.klaviyo.profiles()) == {"y@example.com"}


def test_fault_spec_is_validated() -> None:
    with pytest.raises(ValueError):
        FaultSpec(FaultKind.SERVER_ERROR, count=0)
    with pytest.raises(ValueError):
        FaultSpec(FaultKind.SLOW, delay=-1)
    with pytest.raises(ValueError):
        FaultSpec(FaultKind.SLOW, apply=True)
    assert FaultSpec(FaultKind.UNAVAILABLE).http_status == 503
    assert FaultSpec(FaultKind.TIMEOUT).hold_seconds == 10.0


def test_counters_count_and_reset_clears(
    esp: EspEmulator, mc: requests.Session, kl: requests.Session
) -> None:
    bodies = [batch([member(f"u{i}@example.com")]) for i in range(3)]
    sent = 0
    for body in bodies:
        response = mc.post(f"{esp.mailchimp_url}/lists/{LIST}", json=body)
        sent += len(response.request.body)
    mc.get(f"{esp.mailchimp_url}/lists/{LIST}/members/0000")
    klaviyo = kl.post(esp.base_url + IMPORT_PATH, json=import_job([profile("k@example.com")]))
    sent += len(klaviyo.request.body)
    snapshot = esp.stats.snapshot()
    assert snapshot.count("POST", BATCH_TEMPLATE, 200) == 3
    assert snapshot.count("GET", "/3.0/lists/{list_id}/members/{subscriber_hash}", 404) == 1
    assert snapshot.count("POST", IMPORT_PATH, 202) == 1
    assert snapshot.count() == 5
    assert snapshot.bytes_received == sent
    assert snapshot.bytes_sent > sum(len(b) for b in (klaviyo.content,))
    # One keep-alive connection per session, however many requests.
    assert esp.connections_accepted == 2

    esp.faults.queue(FaultSpec(FaultKind.SERVER_ERROR))
    esp.wait_idle()
    esp.reset()
    assert esp.stats.count() == 0
    assert esp.faults.pending() == []
    assert esp.mailchimp.members(LIST) == {}
    assert esp.klaviyo.profile_count() == 0
    assert post_batch(esp, mc, "again@example.com").json()["total_created"] == 1


def test_process_summary_endpoint(esp: EspEmulator, mc: requests.Session) -> None:
    post_batch(esp, mc, "a@example.com", "b@example.com")
    summary = requests.get(f"{esp.base_url}/_emulator/stats", timeout=5).json()
    assert summary["mailchimp"]["members"] == {LIST: 2}
    assert summary["requests"] == [{"method": "POST", "template": BATCH_TEMPLATE, "status": 200, "count": 1}]
    assert requests.post(f"{esp.base_url}/_emulator/reset", timeout=5).status_code == 204
    assert esp.mailchimp.members(LIST) == {}
    # Admin calls are not counted.
    assert esp.stats.count() == 0
