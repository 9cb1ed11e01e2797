"""Request builders shared by the emulator tests."""

from __future__ import annotations

from typing import Any

import requests

from reverse_etl.testing import EspEmulator

REVISION = "2026-07-15"


def mailchimp_session(esp: EspEmulator) -> requests.Session:
    session = requests.Session()
    session.auth = ("anystring", esp.mailchimp_api_key)
    return session


def klaviyo_session(esp: EspEmulator) -> requests.Session:
    session = requests.Session()
    session.headers.update(
        {
            "Authorization": f"Klaviyo-API-Key {esp.klaviyo_api_key}",
            "revision": REVISION,
            "Content-Type": "application/vnd.api+json",
            "Accept": "application/vnd.api+json",
        }
    )
    return session


def member(email: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"email_address": email, "status_if_new": "subscribed"}
    body.update(fields)
    return body


def batch(members: list[dict[str, Any]], update_existing: bool = True) -> dict[str, Any]:
    return {"members": members, "update_existing": update_existing}


def profile(email: str | None, properties: dict[str, Any] | None = None, **attributes: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = dict(attributes)
    if email is not None:
        attrs["email"] = email
    if properties is not None:
        attrs["properties"] = properties
    return {"type": "profile", "attributes": attrs}


def import_job(profiles: list[dict[str, Any]], list_id: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": "profile-bulk-import-job",
        "attributes": {"profiles": {"data": profiles}},
    }
    if list_id is not None:
        data["relationships"] = {"lists": {"data": [{"type": "list", "id": list_id}]}}
    return {"data": data}


def consent_job(
    kind: str, emails: list[str], list_id: str | None = None, consent: str | None = None
) -> dict[str, Any]:
    """kind: "create" (subscribe) or "delete" (unsubscribe)."""
    consent = consent or ("SUBSCRIBED" if kind == "create" else "UNSUBSCRIBED")
    data: dict[str, Any] = {
        "type": f"profile-subscription-bulk-{kind}-job",
        "attributes": {
            "profiles": {
                "data": [
                    {
                        "type": "profile",
                        "attributes": {
                            "email": e,
                            "subscriptions": {"email": {"marketing": {"consent": consent}}},
                        },
                    }
                    for e in emails
                ]
            }
        },
    }
    if list_id is not None:
        data["relationships"] = {"list": {"data": {"type": "list", "id": list_id}}}
    return {"data": data}


def deletion_job(**identifier: str) -> dict[str, Any]:
    profile_id = identifier.pop("id", None)
    data: dict[str, Any] = {"type": "profile", "attributes": identifier}
    if profile_id is not None:
        data["id"] = profile_id
    return {
        "data": {"type": "data-privacy-deletion-job", "attributes": {"profile": {"data": data}}},
    }
