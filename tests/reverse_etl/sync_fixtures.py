"""Helpers for the sync-engine tests: a synthetic audience relation and destinations aimed at the emulator."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from reverse_etl.destinations import KlaviyoConfig, KlaviyoDestination, MailchimpConfig, MailchimpDestination
from reverse_etl.models import AUDIENCE_MERGE_COLUMNS, IDENTITY_FIELDS, MAILCHIMP_FIELDS, SyncConfig, SyncMode
from reverse_etl.retry import RetryPolicy
from reverse_etl.testing import EspEmulator

LIST_ID = "L1"
REVISION = "2026-07-15"
FAST_RETRY = RetryPolicy(max_attempts=8, base_delay=0.01, max_delay=0.2, timeout=5.0)

COLUMNS = ("person_id", "email", *AUDIENCE_MERGE_COLUMNS, "is_subscribable", "updated_at", "row_hash")


def person(i: int, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "person_id": f"p{i:05d}",
        "email": f"user{i}@example.com",
        "first_name": f"First{i}",
        "segment": ["vip", "loyal", "at_risk"][i % 3],
        "ltv_tier": ["High", "Medium", "Low"][i % 3],
        "churn_band": ["low", "medium", "high"][i % 3],
        "offer": f"OFFER{i % 5}",
        "is_subscribable": i % 2 == 0,
        "updated_at": "2026-11-01 00:00:00",
        "row_hash": f"h{i}",
    }
    for n in (1, 2, 3):
        row[f"rec_{n}_product_id"] = f"sku-{(i * 7 + n) % 501:04d}"
        row[f"rec_{n}_name"] = f"Product {i}-{n}"
        row[f"rec_{n}_url"] = f"https://shop.example.com/p/{i}-{n}"
        row[f"rec_{n}_image"] = f"https://cdn.example.com/p/{i}-{n}.jpg"
    row.update(overrides)
    return row


def people(ids: Iterable[int]) -> list[dict[str, Any]]:
    return [person(i) for i in ids]


def write_audience(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    """(Re)create activation.esp_audience with these rows."""
    con.execute("create schema if not exists activation")
    cols = ", ".join(
        f"{c} boolean"
        if c == "is_subscribable"
        else f"{c} timestamp"
        if c == "updated_at"
        else f"{c} varchar"
        for c in COLUMNS
    )
    con.execute(f"create or replace table activation.esp_audience ({cols})")
    if rows:
        # One statement for all rows (executemany is one statement per row: slow in DuckDB).
        selects = ", ".join(
            f"unnest(?::{'boolean' if c == 'is_subscribable' else 'varchar'}[])" for c in COLUMNS
        )
        con.execute(
            f"insert into activation.esp_audience select {selects}", [[r[c] for r in rows] for c in COLUMNS]
        )


def mailchimp_config(mode: SyncMode = SyncMode.UPSERT) -> SyncConfig:
    return SyncConfig(destination="mailchimp", fields=MAILCHIMP_FIELDS, mode=mode)


def klaviyo_config() -> SyncConfig:
    return SyncConfig(destination="klaviyo", fields=IDENTITY_FIELDS, consent_column="is_subscribable")


def mailchimp(esp: EspEmulator, **overrides: Any) -> MailchimpDestination:
    settings: dict[str, Any] = {"base_url": esp.mailchimp_url, "list_id": LIST_ID, "retry": FAST_RETRY}
    settings.update(overrides)
    return MailchimpDestination(MailchimpConfig(**settings))


def klaviyo(esp: EspEmulator, **overrides: Any) -> KlaviyoDestination:
    settings: dict[str, Any] = {
        "base_url": esp.base_url,
        "revision": REVISION,
        "retry": FAST_RETRY,
        "poll_interval": 0.01,
        "max_poll_interval": 0.1,
    }
    settings.update(overrides)
    return KlaviyoDestination(KlaviyoConfig(**settings))


def members(esp: EspEmulator) -> dict[str, dict[str, Any]]:
    """Non-archived Mailchimp members: email -> merge fields."""
    return {e: m.merge_fields for e, m in esp.mailchimp.members(LIST_ID, include_archived=False).items()}


def expected_merge_fields(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["email"].lower(): {m.field: r[m.column] for m in MAILCHIMP_FIELDS} for r in rows}


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[tuple[duckdb.DuckDBPyConnection, Path]]:
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    yield con, path
    con.close()
