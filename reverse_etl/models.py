"""Typed configuration and results of a reverse-ETL sync (no I/O here)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

Progress = Callable[[str], None]


class SyncMode(StrEnum):
    UPSERT = "upsert"  # send inserts and changes; people who left the audience are left alone
    MIRROR = "mirror"  # also remove (Mailchimp: archive) people who left the audience


@dataclass(frozen=True)
class FieldMapping:
    """One merge field: warehouse `column` -> destination `field` (e.g. first_name -> FNAME)."""

    column: str
    field: str


AUDIENCE_MERGE_COLUMNS: tuple[str, ...] = (
    "first_name",
    "segment",
    "ltv_tier",
    "churn_band",
    "rec_1_product_id",
    "rec_1_name",
    "rec_1_url",
    "rec_1_image",
    "rec_2_product_id",
    "rec_2_name",
    "rec_2_url",
    "rec_2_image",
    "rec_3_product_id",
    "rec_3_name",
    "rec_3_url",
    "rec_3_image",
    "offer",
)

# Mailchimp merge tags are upper-case letters, digits or _, at most 10 characters.
MAILCHIMP_FIELDS: tuple[FieldMapping, ...] = (
    FieldMapping("first_name", "FNAME"),
    FieldMapping("segment", "SEGMENT"),
    FieldMapping("ltv_tier", "LTV_TIER"),
    FieldMapping("churn_band", "CHURN"),
    *(
        FieldMapping(f"rec_{i}_{part}", f"REC{i}_{tag}")
        for i in (1, 2, 3)
        for part, tag in (("product_id", "ID"), ("name", "NAME"), ("url", "URL"), ("image", "IMG"))
    ),
    FieldMapping("offer", "OFFER"),
)
# Klaviyo and file destinations keep the warehouse names.
IDENTITY_FIELDS: tuple[FieldMapping, ...] = tuple(FieldMapping(c, c) for c in AUDIENCE_MERGE_COLUMNS)


def mapping_from(columns_to_fields: Mapping[str, str]) -> tuple[FieldMapping, ...]:
    return tuple(FieldMapping(c, f) for c, f in columns_to_fields.items())


@dataclass(frozen=True)
class SyncConfig:
    """What to sync and how; destination connection settings live in the destination's own config."""

    destination: str  # the state key, e.g. "mailchimp" or "mailchimp:newsletter"
    fields: tuple[FieldMapping, ...] = IDENTITY_FIELDS
    mode: SyncMode = SyncMode.UPSERT
    audience_relation: str = "activation.esp_audience"
    key_column: str = "person_id"
    email_column: str = "email"
    consent_column: str | None = None  # boolean column: may this person be subscribed (Klaviyo)?
    # The relation holds only people who consented (esp_audience is consent-gated upstream), so every row
    # may be subscribed when it is new to the destination. Ignored when consent_column is set.
    consent_gated: bool = False
    # Read before each sync, in this order: addresses to erase at the destination (column email; dbt's
    # activation.esp_erasures), then people who opted out, to unsubscribe there (column person_id;
    # activation.esp_opt_outs). None: no such step.
    erasure_relation: str | None = None
    opt_out_relation: str | None = None
    state_schema: str = "reverse_etl"
    sample_size: int = 3  # sample payloads in a dry run

    def __post_init__(self) -> None:
        names = [m.field for m in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate destination fields in mapping: {names}")


# Not frozen: a frozen dataclass's __init__ costs four times as much, and a full sync makes a million of
# these. Nothing mutates a Record after read_audience builds it.
@dataclass(slots=True)
class Record:
    """One audience row after mapping: what a destination receives (treat as read-only)."""

    key: str
    email: str
    fields: dict[str, Any]  # destination field -> value (empty when `fragment` holds them)
    row_hash: str  # hash of the mapped fields (and the email)
    consent: bool = False
    # The mapped fields already encoded as JSON by the warehouse, in the shape the destination asked for
    # (Destination.payload_sql); None when the destination builds its payloads from `fields`.
    fragment: bytes | None = None


@dataclass(slots=True)  # not frozen, like Record: an incremental sync loads one per person in the snapshot
class SnapshotRow:
    key: str
    row_hash: str | None
    status: str
    email: str | None


@dataclass(frozen=True)
class Reject:
    key: str
    http_status: int | None
    code: str | None
    message: str


@dataclass
class BatchResult:
    """What a destination confirmed for one batch; the engine commits it to state at once."""

    confirmed: list[Record] = field(default_factory=list)
    rejected: list[tuple[Record, Reject]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # keys confirmed removed (mirror mode)
    failed: list[tuple[str, Reject]] = field(default_factory=list)  # retries exhausted: not committed
    job_id: str | None = None  # a pending job now finished (Klaviyo)


@dataclass
class SyncResult:
    run_id: str
    destination: str
    mode: SyncMode
    dry_run: bool
    inserts: int = 0
    changes: int = 0
    removals: int = 0
    retries: int = 0  # unchanged keys re-sent because they were rejected last time
    resends: int = 0  # unchanged keys re-sent because the run was a full resync
    invalid: int = 0
    sent: int = 0
    confirmed: int = 0
    rejected: int = 0
    removed: int = 0
    failed: int = 0
    resumed_jobs: int = 0
    # Addresses erased before the diff (engine.erase_requested; in a dry run, those it would erase) and
    # erasures that failed (tried again next run).
    erased: int = 0
    erase_failed: int = 0
    # People who opted out in the warehouse, unsubscribed before the diff (engine.unsubscribe_opted_out).
    unsubscribed: int = 0
    unsubscribe_failed: int = 0
    outcome: str = "running"
    duration_seconds: float = 0.0
    samples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome in ("success", "dry_run")


def email_sha256(email: str) -> str:
    """The sha256 of the normalized address (trimmed, lower-cased): how state records an erased address."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def email_digest(email: str | None) -> str:
    """What logs show instead of an email address: the start of its email_sha256."""
    if not email:
        return "-"
    return email_sha256(email)[:12]


# Any run of characters holding an @ between quotes, brackets, commas or whitespace: vendors quote the address
# in their error texts ("x@y.com is already a list member", "Invalid email address: 'x@y'"), malformed
# ones included.
_ADDRESS_LIKE = re.compile(r"""[^\s'"<>(),;\[\]{}]*@[^\s'"<>(),;\[\]{}]*""")


def redact_emails(text: str | None) -> str | None:
    """`text` with every address-like token replaced by its digest, for error messages that are stored."""
    if not text or "@" not in text:
        return text
    return _ADDRESS_LIKE.sub(lambda match: f"<sha256:{email_digest(match.group(0))}>", text)
