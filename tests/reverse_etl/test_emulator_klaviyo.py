"""The Klaviyo emulation: spec validation, async import jobs, consent, erasure, limits and rate limits."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from reverse_etl.testing import EspEmulator, RateLimit
from reverse_etl.testing.openapi import convert_schema, default_specs_dir
from reverse_etl.testing.ratelimit import FixedWindowLimiter
from tests.reverse_etl.esp_helpers import (
    consent_job,
    deletion_job,
    import_job,
    klaviyo_session,
    profile,
)

SPECS = default_specs_dir() / "klaviyo"
IMPORT_PATH = "/api/profile-bulk-import-jobs"
ROWS = "/data/attributes/profiles/data"
A0 = f"{ROWS}/0/attributes"
POLL = 0.12  # the job endpoints allow 10 requests/s; polling faster gets (faithfully) throttled


def _rows(body: dict[str, Any]) -> list[dict[str, Any]]:
    return body["data"]["attributes"]["profiles"]["data"]


def response_validator(file: str, status: str) -> Draft202012Validator:
    """A validator for one documented response body, so the emulator's responses are held to the spec too."""
    spec = json.loads((SPECS / file).read_text())
    [operation] = [op for item in spec["paths"].values() for op in item.values()]
    response = operation["responses"][status]
    if "$ref" in response:  # 4XX -> #/components/responses/ClientError
        response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schemas = {name: convert_schema(s, strict=False) for name, s in spec["components"]["schemas"].items()}
    schemas["__response"] = convert_schema(response["content"]["application/vnd.api+json"]["schema"], False)
    resource = Resource.from_contents({"components": {"schemas": schemas}}, default_specification=DRAFT202012)
    registry: Registry = Registry().with_resource("urn:spec", resource)
    return Draft202012Validator({"$ref": "urn:spec#/components/schemas/__response"}, registry=registry)


def post_import(esp: EspEmulator, kl: requests.Session, body: dict[str, Any]) -> requests.Response:
    return kl.post(esp.base_url + IMPORT_PATH, json=body)


def wait_for_job(esp: EspEmulator, kl: requests.Session, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        doc = kl.get(f"{esp.base_url}{IMPORT_PATH}/{job_id}").json()
        if doc["data"]["attributes"]["status"] == "complete":
            return doc
        time.sleep(POLL)
    raise AssertionError(f"job {job_id} did not complete")


@pytest.mark.parametrize(
    ("mutate", "pointer"),
    [
        (lambda b: b["data"].update(type="profile-bulk-import"), "/data/type"),
        (lambda b: b["data"]["attributes"].pop("profiles"), "/data/attributes/profiles"),
        (lambda b: _rows(b)[1].update(type="profiles"), f"{ROWS}/1/type"),
        (lambda b: _rows(b)[0]["attributes"].update(emial="a@example.com"), f"{ROWS}/0/attributes/emial"),
        (lambda b: _rows(b)[1]["attributes"].update(email=42), f"{ROWS}/1/attributes/email"),
        (lambda b: _rows(b)[0]["attributes"].update(properties=["x"]), f"{ROWS}/0/attributes/properties"),
        (lambda b: _rows(b)[0]["attributes"].update(location={"latitude": []}), f"{A0}/location/latitude"),
        (lambda b: b["data"]["attributes"]["profiles"].update(data={}), ROWS),
        (lambda b: b.update(data=None), "/data"),
    ],
)  # fmt: skip
def test_malformed_import_is_a_400_naming_the_pointer(
    esp: EspEmulator, kl: requests.Session, mutate: Any, pointer: str
) -> None:
    body = import_job([profile("a@example.com", {"SEGMENT": "x"}), profile("b@example.com")])
    mutate(body)
    response = post_import(esp, kl, body)
    assert response.status_code == 400, response.text
    doc = response.json()
    response_validator("bulk_import_profiles.json", "4XX").validate(doc)
    assert pointer in [e["source"]["pointer"] for e in doc["errors"]], doc
    assert all(e["code"] == "invalid" for e in doc["errors"])
    esp.wait_idle()
    assert esp.klaviyo.profile_count() == 0


@pytest.mark.parametrize(
    ("mutate", "suffix"),
    [
        (lambda attrs: attrs.update(emial="typo@example.com"), "attributes/emial"),
        (lambda attrs: attrs.update(properties=["not", "an", "object"]), "attributes/properties"),
        (lambda attrs: attrs.update(email=None, phone_number=7), "attributes/phone_number"),
    ],
)
def test_one_bad_profile_deep_in_a_full_batch_sinks_the_import(
    esp: EspEmulator, kl: requests.Session, mutate: Any, suffix: str
) -> None:
    """The validator's fast paths must not stop looking after the first profiles of a 10,000-profile job."""
    bad = 9_731
    body = import_job([profile(f"user{i}@example.com", {"SEGMENT": "vip", "N": i}) for i in range(10_000)])
    mutate(_rows(body)[bad]["attributes"])
    response = post_import(esp, kl, body)
    assert response.status_code == 400, response.text[:500]
    pointers = [e["source"]["pointer"] for e in response.json()["errors"]]
    assert f"{ROWS}/{bad}/{suffix}" in pointers, pointers
    esp.wait_idle()
    assert esp.klaviyo.profile_count() == 0


def test_import_job_lifecycle_and_import_errors() -> None:
    # A slow worker so the job is observably queued, then processing, then complete.
    with EspEmulator(job_delay=0.3, job_processing_time=0.3) as esp, klaviyo_session(esp) as kl:
        esp.faults.reject(
            ["held@example.com"], vendor="klaviyo", code="suppressed", message="On a suppression list"
        )
        profiles = [
            profile("ann@example.com", {"SEGMENT": "loyal", "LTV_TIER": "High"}, first_name="Ann"),
            profile("not-an-email"),
            profile("held@example.com"),
            profile("bob@example.com", external_id="person-2"),
            profile(None, phone_number="+15005550006"),
            profile(None),  # no identifier at all
        ]
        created = post_import(esp, kl, import_job(profiles, list_id="Y6nRLr"))
        assert created.status_code == 202
        response_validator("bulk_import_profiles.json", "202").validate(created.json())
        job = created.json()["data"]
        assert job["attributes"]["status"] == "queued"
        assert job["attributes"]["total_count"] == 6
        assert job["relationships"]["lists"]["data"] == [{"type": "list", "id": "Y6nRLr"}]

        seen = set()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            doc = kl.get(job["links"]["self"]).json()
            response_validator("get_bulk_import_profiles_job.json", "200").validate(doc)
            seen.add(doc["data"]["attributes"]["status"])
            if doc["data"]["attributes"]["status"] == "complete":
                break
            time.sleep(POLL)
        assert seen == {"queued", "processing", "complete"}
        attributes = doc["data"]["attributes"]
        assert (attributes["completed_count"], attributes["failed_count"], attributes["total_count"]) == (
            3,
            3,
            6,
        )
        assert attributes["completed_at"] is not None

        errors_url = f"{esp.base_url}{IMPORT_PATH}/{job['id']}/import-errors"
        listed = kl.get(errors_url).json()
        response_validator("get_errors_for_bulk_import_profiles_job.json", "200").validate(listed)
        by_pointer = {e["attributes"]["source"]["pointer"]: e["attributes"] for e in listed["data"]}
        assert set(by_pointer) == {
            "/data/attributes/profiles/data/1/attributes/email",
            "/data/attributes/profiles/data/2",
            "/data/attributes/profiles/data/5/attributes",
        }
        rejected = by_pointer["/data/attributes/profiles/data/2"]
        assert (rejected["code"], rejected["detail"]) == ("suppressed", "On a suppression list")
        assert rejected["original_payload"] == profiles[2]

        # Pagination: page[size]=2 gives 2 + 1 errors and a next link.
        first = kl.get(errors_url, params={"page[size]": 2}).json()
        assert len(first["data"]) == 2
        second = kl.get(first["links"]["next"]).json()
        assert len(second["data"]) == 1
        assert "next" not in second["links"]
        assert kl.get(errors_url, params={"page[size]": 101}).status_code == 400

        profiles_now = esp.klaviyo.profiles()
        assert set(profiles_now) == {"ann@example.com", "bob@example.com"}
        assert esp.klaviyo.profile_count() == 3  # plus the phone-only profile
        assert profiles_now["ann@example.com"].attributes == {"first_name": "Ann"}
        assert profiles_now["ann@example.com"].lists == {"Y6nRLr"}
        assert set(esp.klaviyo.list_members("Y6nRLr")) == {"ann@example.com", "bob@example.com"}
        assert profiles_now["bob@example.com"].external_id == "person-2"


def test_import_upserts_by_email_and_never_touches_consent(esp: EspEmulator, kl: requests.Session) -> None:
    subscribe = esp.base_url + "/api/profile-subscription-bulk-create-jobs"
    assert kl.post(subscribe, json=consent_job("create", ["ann@example.com"])).status_code == 202
    esp.wait_idle()
    assert esp.klaviyo.profile("ann@example.com").consent() == "SUBSCRIBED"
    before = esp.klaviyo.subscription_changes

    first = post_import(esp, kl, import_job([profile("ann@example.com", {"SEGMENT": "loyal", "OFFER": "A"})]))
    second = post_import(esp, kl, import_job([profile("ANN@example.com", {"OFFER": "B"}, first_name="Ann")]))
    for response in (first, second):
        wait_for_job(esp, kl, response.json()["data"]["id"])
    ann = esp.klaviyo.profile("ann@example.com")
    assert ann.properties == {"SEGMENT": "loyal", "OFFER": "B"}  # merged, not replaced
    assert ann.attributes == {"first_name": "Ann"}
    assert ann.consent() == "SUBSCRIBED"
    assert esp.klaviyo.subscription_changes == before
    assert esp.klaviyo.creates == {"ann@example.com": 1}
    assert esp.klaviyo.profile_count() == 1


def test_patch_properties_and_identifier_conflicts(esp: EspEmulator, kl: requests.Session) -> None:
    setup = import_job(
        [
            profile("ann@example.com", {"SKUS": ["a"], "OLD": 1}, external_id="p1"),
            profile("bob@example.com", external_id="p2"),
        ]
    )
    wait_for_job(esp, kl, post_import(esp, kl, setup).json()["data"]["id"])
    patched = profile("ann@example.com")
    patched["meta"] = {"patch_properties": {"append": {"SKUS": "b"}, "unset": "OLD"}}
    conflict = profile("ann@example.com", external_id="p2")  # names two different profiles
    job = wait_for_job(esp, kl, post_import(esp, kl, import_job([patched, conflict])).json()["data"]["id"])
    assert job["data"]["attributes"]["failed_count"] == 1
    assert esp.klaviyo.profile("ann@example.com").properties == {"SKUS": ["a", "b"]}
    assert esp.klaviyo.profile("ann@example.com").external_id == "p1"


def test_import_size_limits(esp: EspEmulator, kl: requests.Session) -> None:
    too_many = import_job([profile(f"u{i}@example.com") for i in range(10_001)])
    response = post_import(esp, kl, too_many)
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"]["pointer"] == "/data/attributes/profiles/data"
    assert "10000" in response.json()["errors"][0]["detail"]

    exactly = post_import(esp, kl, import_job(too_many["data"]["attributes"]["profiles"]["data"][:10_000]))
    assert exactly.status_code == 202
    assert exactly.json()["data"]["attributes"]["total_count"] == 10_000

    big = "x" * 600
    too_large = import_job([profile(f"u{i}@example.com", {"BLOB": big}) for i in range(9_000)])
    response = post_import(esp, kl, too_large)
    assert len(json.dumps(too_large)) > 5 * 1024 * 1024
    assert response.status_code == 413
    assert response.json()["errors"][0]["code"] == "request_too_large"

    huge_profile = profile("huge@example.com", {"BLOB": "y" * (101 * 1024)})
    job = wait_for_job(esp, kl, post_import(esp, kl, import_job([huge_profile])).json()["data"]["id"])
    assert job["data"]["attributes"]["failed_count"] == 1
    assert esp.klaviyo.profile("huge@example.com") is None


def test_headers_auth_and_media_type(esp: EspEmulator) -> None:
    body = import_job([profile("a@example.com")])
    url = esp.base_url + IMPORT_PATH
    key = f"Klaviyo-API-Key {esp.klaviyo_api_key}"
    no_revision = requests.post(url, json=body, headers={"Authorization": key}, timeout=5)
    assert no_revision.status_code == 400
    assert no_revision.json()["errors"][0]["source"] == {"parameter": "revision"}
    bad_revision = requests.post(
        url, json=body, headers={"Authorization": key, "revision": "latest"}, timeout=5
    )
    assert bad_revision.status_code == 400
    for headers in (
        {"revision": "2026-07-15"},
        {"revision": "2026-07-15", "Authorization": "Klaviyo-API-Key pk_x"},
    ):
        unauthorized = requests.post(url, json=body, headers=headers, timeout=5)
        assert unauthorized.status_code == 401
        response_validator("bulk_import_profiles.json", "4XX").validate(unauthorized.json())
    form = requests.post(url, data="x=1", headers={"Authorization": key, "revision": "2026-07-15"}, timeout=5)
    assert form.status_code == 415
    esp.wait_idle()
    assert esp.klaviyo.profile_count() == 0
    assert esp.stats.count("POST", IMPORT_PATH, 202) == 0


def test_unknown_job_and_path(esp: EspEmulator, kl: requests.Session) -> None:
    missing = kl.get(f"{esp.base_url}{IMPORT_PATH}/01NOPE")
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["code"] == "not_found"
    assert kl.get(f"{esp.base_url}/api/profiles").status_code == 404
    assert kl.delete(f"{esp.base_url}{IMPORT_PATH}").status_code == 405
    assert esp.stats.count(template="<unmatched>", status=404) == 1


def test_rate_limits_come_from_the_spec_and_answer_429_with_retry_after() -> None:
    with EspEmulator() as esp:
        assert esp.klaviyo.rate_limits["bulk_import_profiles"] == RateLimit(10, 150)
        assert esp.klaviyo.rate_limits["request_profile_deletion"] == RateLimit(3, 60)
    tight = {"bulk_import_profiles": RateLimit(burst_per_second=2, steady_per_minute=100)}
    with EspEmulator(klaviyo_rate_limits=tight) as esp, klaviyo_session(esp) as kl:
        body = import_job([profile("a@example.com")])
        first, second, third = (post_import(esp, kl, body) for _ in range(3))
        assert [first.status_code, second.status_code, third.status_code] == [202, 202, 429]
        assert (first.headers["RateLimit-Limit"], first.headers["RateLimit-Remaining"]) == ("100", "99")
        assert third.headers["Retry-After"] == "1"
        assert third.json()["errors"][0]["code"] == "throttled"
        assert "RateLimit-Remaining" not in third.headers
        # Other endpoints have their own windows.
        assert kl.get(f"{esp.base_url}{IMPORT_PATH}/{first.json()['data']['id']}").status_code == 200
        time.sleep(1.05)
        assert post_import(esp, kl, body).status_code == 202
    with EspEmulator(klaviyo_rate_limits=False) as esp, klaviyo_session(esp) as kl:
        assert esp.klaviyo.rate_limits == {}
        assert all(post_import(esp, kl, body).status_code == 202 for _ in range(12))


def test_fixed_windows_with_a_fake_clock() -> None:
    now = [100.0]
    limiter = FixedWindowLimiter(clock=lambda: now[0])
    limit = RateLimit(burst_per_second=2, steady_per_minute=3)
    assert [limiter.check("k", "op", limit).allowed for _ in range(3)] == [True, True, False]
    now[0] += 1.0
    assert limiter.check("k", "op", limit).allowed  # new burst window, third of the steady window
    refused = limiter.check("k", "op", limit)
    assert not refused.allowed
    assert refused.retry_after == 59  # the steady window opened at t=100 and ends at t=160
    assert limiter.check("other-key", "op", limit).allowed
    now[0] += 59.0
    assert limiter.check("k", "op", limit).allowed


def test_subscribe_and_unsubscribe_are_the_only_consent_writes(
    esp: EspEmulator, kl: requests.Session
) -> None:
    subscribe = esp.base_url + "/api/profile-subscription-bulk-create-jobs"
    unsubscribe = esp.base_url + "/api/profile-subscription-bulk-delete-jobs"
    both = consent_job("create", ["ann@example.com", "bob@example.com"], "L1")
    assert kl.post(subscribe, json=both).status_code == 202
    assert kl.post(unsubscribe, json=consent_job("delete", ["bob@example.com"], "L1")).status_code == 202
    esp.wait_idle()
    changes = [(c.email, c.channel, c.old, c.new, c.list_id) for c in esp.klaviyo.subscription_changes]
    assert changes == [
        ("ann@example.com", "email.marketing", "NEVER_SUBSCRIBED", "SUBSCRIBED", "L1"),
        ("bob@example.com", "email.marketing", "NEVER_SUBSCRIBED", "SUBSCRIBED", "L1"),
        ("bob@example.com", "email.marketing", "SUBSCRIBED", "UNSUBSCRIBED", "L1"),
    ]
    assert esp.klaviyo.profile("bob@example.com").consent() == "UNSUBSCRIBED"
    assert esp.klaviyo.profile("ann@example.com").lists == {"L1"}

    too_many = kl.post(subscribe, json=consent_job("create", [f"u{i}@example.com" for i in range(1001)]))
    assert too_many.status_code == 400
    too_many = kl.post(unsubscribe, json=consent_job("delete", [f"u{i}@example.com" for i in range(101)]))
    assert too_many.status_code == 400
    wrong_enum = kl.post(subscribe, json=consent_job("create", ["c@example.com"], consent="UNSUBSCRIBED"))
    assert wrong_enum.status_code == 400
    assert wrong_enum.json()["errors"][0]["source"]["pointer"].endswith(
        "/subscriptions/email/marketing/consent"
    )
    backdated = consent_job("create", ["c@example.com"])
    backdated["data"]["attributes"]["profiles"]["data"][0]["attributes"]["subscriptions"]["email"][
        "marketing"
    ]["consented_at"] = "2024-01-01T00:00:00+00:00"
    assert kl.post(subscribe, json=backdated).status_code == 400  # needs historical_import: true
    backdated["data"]["attributes"]["historical_import"] = True
    assert kl.post(subscribe, json=backdated).status_code == 202
    esp.wait_idle()
    assert len(esp.klaviyo.subscription_changes) == 4


def test_deletion_jobs_erase_and_are_recorded(esp: EspEmulator, kl: requests.Session) -> None:
    created = post_import(esp, kl, import_job([profile("ann@example.com", {"A": 1})]))
    wait_for_job(esp, kl, created.json()["data"]["id"])
    deletions = esp.base_url + "/api/data-privacy-deletion-jobs"
    assert kl.post(deletions, json=deletion_job(email="ann@example.com")).status_code == 202
    assert kl.post(deletions, json=deletion_job(email="never@example.com")).status_code == 202
    both = kl.post(deletions, json=deletion_job(email="ann@example.com", phone_number="+15005550006"))
    assert both.status_code == 400
    # The documented limit for this endpoint is 3/s, and the 400 counted too.
    throttled = kl.post(deletions, json=deletion_job())
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "1"
    time.sleep(1.05)
    assert kl.post(deletions, json=deletion_job()).status_code == 400
    esp.wait_idle()
    assert esp.klaviyo.profile("ann@example.com") is None
    assert [(e.vendor, e.email, e.found) for e in esp.klaviyo.erasures] == [
        ("klaviyo", "ann@example.com", True),
        ("klaviyo", "never@example.com", False),
    ]
    assert esp.klaviyo.erasures[0].profile_id is not None


def test_documented_limits_match_the_spec_text() -> None:
    from reverse_etl.testing import klaviyo
    from reverse_etl.testing.openapi import documented_max, load_operations

    ops = load_operations(Path(SPECS))
    assert documented_max(ops["bulk_import_profiles"].description, r"up to ([\d,]+) profiles") == (
        klaviyo.MAX_IMPORT_PROFILES
    )
    assert documented_max(ops["bulk_import_profiles"].description, r"payload size is (\d+)MB") == 5
    assert documented_max(ops["bulk_import_profiles"].description, r"per-profile is (\d+)KB") == 100
    assert documented_max(ops["bulk_subscribe_profiles"].description, r"subscription: (\d+)") == (
        klaviyo.MAX_SUBSCRIBE_PROFILES
    )
    assert documented_max(ops["bulk_unsubscribe_profiles"].description, r"per call: (\d+)") == (
        klaviyo.MAX_UNSUBSCRIBE_PROFILES
    )
