"""Build a sync's config and destination from plain settings: the one place that knows how.

`python -m reverse_etl.run` fills `DestinationSettings` from its flags, `personalize sync` (and whatever else
calls `personalize.sync.sync_audience`) from environment variables via `settings_from_env`. Secrets are not
part of the settings: each destination reads its API key from its env var when it first connects.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from reverse_etl.destinations import (
    FileConfig,
    FileDestination,
    KlaviyoConfig,
    KlaviyoDestination,
    MailchimpConfig,
    MailchimpDestination,
)
from reverse_etl.destinations.base import Destination
from reverse_etl.models import IDENTITY_FIELDS, MAILCHIMP_FIELDS, SyncConfig, SyncMode
from reverse_etl.retry import RetryPolicy

DESTINATION_KINDS = ("file", "mailchimp", "klaviyo")
AUDIENCE_RELATION = "activation.esp_audience"
# Addresses to erase at every destination (column email), read before each sync (SyncConfig.erasure_relation).
ERASURE_RELATION = "activation.esp_erasures"
# People who opted out (column person_id): unsubscribed before each sync (SyncConfig.opt_out_relation).
OPT_OUT_RELATION = "activation.esp_opt_outs"

# Klaviyo cannot archive (mirror mode is refused); the others mirror the audience, so a person who leaves it
# (capped, moved to the control group) is archived rather than left subscribed. Opt-outs are also
# unsubscribed and erasures deleted, in every mode (SyncConfig.opt_out_relation, erasure_relation).
DEFAULT_MODES = {"file": SyncMode.MIRROR, "mailchimp": SyncMode.MIRROR, "klaviyo": SyncMode.UPSERT}

MAILCHIMP_API_KEY = "MAILCHIMP_API_KEY"
MAILCHIMP_LIST_ID = "MAILCHIMP_LIST_ID"
MAILCHIMP_BASE_URL = "MAILCHIMP_BASE_URL"  # optional, e.g. an emulator: http://127.0.0.1:8025/3.0
MAILCHIMP_SERVER_PREFIX = "MAILCHIMP_SERVER_PREFIX"  # optional, e.g. us21 (default: the API key's suffix)
KLAVIYO_API_KEY = "KLAVIYO_API_KEY"
KLAVIYO_LIST_ID = "KLAVIYO_LIST_ID"
KLAVIYO_BASE_URL = "KLAVIYO_BASE_URL"  # optional
KLAVIYO_REVISION = "KLAVIYO_REVISION"  # optional

_SERVER_PREFIX = re.compile(r"^[a-z]{2,4}[0-9]{1,3}$")


class MissingSetting(ValueError):
    """A required setting is absent or malformed; the message names the variable, never its value."""


@dataclass(frozen=True)
class DestinationSettings:
    kind: str  # one of DESTINATION_KINDS
    base_url: str | None = None
    list_id: str | None = None
    batch_size: int | None = None  # None: the vendor's maximum
    max_connections: int = 4
    poll_interval: float = 0.2
    revision: str | None = None
    export_dir: Path = Path("data/exports")
    file_format: str = "csv"
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if self.kind not in DESTINATION_KINDS:
            expected = ", ".join(DESTINATION_KINDS)
            raise ValueError(f"unknown destination {self.kind!r}; expected one of {expected}")

    @property
    def state_key(self) -> str:
        """Sync state is kept per list: pointing at another list starts from an empty snapshot."""
        return f"{self.kind}:{self.list_id}" if self.list_id else self.kind


def _required(environ: Mapping[str, str], name: str) -> str:
    value = (environ.get(name) or "").strip()
    if not value:
        raise MissingSetting(f"environment variable {name} is not set")
    return value


def settings_from_env(
    kind: str,
    environ: Mapping[str, str] | None = None,
    *,
    export_dir: Path = Path("data/exports"),
    require_api_key: bool = True,
) -> DestinationSettings:
    """Settings for `kind` from the environment; a missing variable raises MissingSetting naming it.

    Without `require_api_key` (a dry run, which sends nothing) the API key may be missing; the list id
    may not, since the sync state that the dry run compares with is kept per list."""
    env = os.environ if environ is None else environ
    if kind == "mailchimp":
        # Checked here, read by the destination itself when it first connects.
        api_key = _required(env, MAILCHIMP_API_KEY) if require_api_key else (env.get(MAILCHIMP_API_KEY) or "")
        list_id = _required(env, MAILCHIMP_LIST_ID)
        base_url = (env.get(MAILCHIMP_BASE_URL) or "").strip() or None
        prefix = (env.get(MAILCHIMP_SERVER_PREFIX) or "").strip()
        if base_url is None and not api_key.strip() and not prefix:
            # A dry run without a key never connects: no server to name.
            return DestinationSettings(kind, list_id=list_id)
        if base_url is None:
            if not prefix:
                suffix = api_key.rsplit("-", 1)[-1] if "-" in api_key else ""
                if not _SERVER_PREFIX.match(suffix):
                    raise MissingSetting(
                        f"environment variable {MAILCHIMP_SERVER_PREFIX} is not set and "
                        f"{MAILCHIMP_API_KEY} carries no server prefix (such as -us21)"
                    )
                prefix = suffix
            if not _SERVER_PREFIX.match(prefix):
                raise MissingSetting(f"environment variable {MAILCHIMP_SERVER_PREFIX} is not like us21")
            base_url = f"https://{prefix}.api.mailchimp.com/3.0"
        return DestinationSettings(kind, base_url=base_url, list_id=list_id)
    if kind == "klaviyo":
        if require_api_key:
            _required(env, KLAVIYO_API_KEY)
        return DestinationSettings(
            kind,
            base_url=(env.get(KLAVIYO_BASE_URL) or "").strip() or None,
            list_id=_required(env, KLAVIYO_LIST_ID),
            revision=(env.get(KLAVIYO_REVISION) or "").strip() or None,
        )
    return DestinationSettings(kind, export_dir=export_dir)


def build_sync_config(
    settings: DestinationSettings,
    *,
    mode: SyncMode | None = None,
    relation: str = AUDIENCE_RELATION,
    consent_column: str | None = None,
    consent_gated: bool = False,
    state_key: str | None = None,
    erasure_relation: str | None = ERASURE_RELATION,
    opt_out_relation: str | None = OPT_OUT_RELATION,
) -> SyncConfig:
    """Field mapping and mode for the destination. `consent_gated`: the relation holds only consenting
    people (esp_audience does), so people new to Klaviyo are subscribed even without a consent column.
    Each sync first erases the addresses of `erasure_relation` and unsubscribes the people of
    `opt_out_relation` (dbt's; skipped while the warehouse does not have them)."""
    return SyncConfig(
        destination=state_key or settings.state_key,
        fields=MAILCHIMP_FIELDS if settings.kind == "mailchimp" else IDENTITY_FIELDS,
        mode=mode or DEFAULT_MODES[settings.kind],
        audience_relation=relation,
        consent_column=consent_column,
        consent_gated=consent_gated,
        erasure_relation=erasure_relation,
        opt_out_relation=opt_out_relation,
    )


def build_destination(settings: DestinationSettings) -> Destination:
    if settings.kind == "mailchimp":
        return MailchimpDestination(
            MailchimpConfig(
                base_url=settings.base_url,
                list_id=settings.list_id,
                batch_size=settings.batch_size or MailchimpConfig.batch_size,
                max_connections=settings.max_connections,
                retry=settings.retry,
            )
        )
    if settings.kind == "klaviyo":
        optional = {"base_url": settings.base_url} if settings.base_url else {}
        return KlaviyoDestination(
            KlaviyoConfig(
                **optional,
                revision=settings.revision or KlaviyoConfig.revision,
                list_id=settings.list_id,
                max_profiles=settings.batch_size or KlaviyoConfig.max_profiles,
                poll_interval=settings.poll_interval,
                retry=settings.retry,
            )
        )
    return FileDestination(FileConfig(settings.export_dir, settings.file_format))
