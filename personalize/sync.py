"""Sync the warehouse's `activation.esp_audience` to a destination: what `personalize sync`,
`personalize run` and Dagster call.

    result = sync_audience(load_settings(), "mailchimp", dry_run=True)
    print(format_summary(result))

Destination settings come only from environment variables (see reverse_etl.configure): MAILCHIMP_API_KEY,
MAILCHIMP_LIST_ID, optional MAILCHIMP_BASE_URL or MAILCHIMP_SERVER_PREFIX; KLAVIYO_API_KEY, KLAVIYO_LIST_ID,
optional KLAVIYO_BASE_URL, KLAVIYO_REVISION; PERSONALIZE_EXPORT_DIR for the file destination.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb

from personalize.settings import Settings
from reverse_etl.configure import (
    AUDIENCE_RELATION,
    DESTINATION_KINDS,
    MissingSetting,
    build_destination,
    build_sync_config,
    settings_from_env,
)
from reverse_etl.diff import missing_columns
from reverse_etl.engine import relation_exists, sync
from reverse_etl.models import Progress, SyncMode, SyncResult, email_digest

_EMAIL_KEYS = frozenset({"email", "email_address"})


class SyncSetupError(Exception):
    """The sync cannot start (missing setting, no warehouse, no audience): one line for the user."""


def audience_exists(settings: Settings) -> bool:
    """Whether the warehouse holds the audience relation (read-only look)."""
    if not settings.duckdb_path.exists():
        return False
    con = duckdb.connect(str(settings.duckdb_path), read_only=True)
    try:
        return relation_exists(con, AUDIENCE_RELATION)
    finally:
        con.close()


def sync_audience(
    settings: Settings,
    destination: str,
    *,
    dry_run: bool = False,
    full: bool = False,
    progress: Progress | None = None,
    mode: SyncMode | None = None,
) -> SyncResult:
    """One sync of activation.esp_audience to `destination` (file, mailchimp or klaviyo).

    State (snapshot, run history, errors) lives in schema reverse_etl of the same warehouse. A dry run
    sends nothing. `full` re-sends every row without duplicating anyone in the destination. Raises
    SyncSetupError before anything is sent when a setting, the warehouse or the audience is missing.
    """
    if destination not in DESTINATION_KINDS:
        raise SyncSetupError(f"unknown destination {destination!r}; expected {', '.join(DESTINATION_KINDS)}")
    try:
        # The environment is read here and, for API keys, by the destinations themselves: secrets never
        # pass through an argument that could end up in a log or a repr.
        target = settings_from_env(destination, export_dir=settings.export_dir, require_api_key=not dry_run)
    except MissingSetting as error:
        raise SyncSetupError(str(error)) from None
    missing = f"no {AUDIENCE_RELATION} in {settings.duckdb_path}: run `personalize run` first"
    if not settings.duckdb_path.exists():
        raise SyncSetupError(missing)
    try:
        con = duckdb.connect(str(settings.duckdb_path))
    except duckdb.IOException as error:
        raise SyncSetupError(f"cannot open the warehouse {settings.duckdb_path}: {error}") from None
    try:
        if not relation_exists(con, AUDIENCE_RELATION):
            raise SyncSetupError(missing)
        try:
            # esp_audience holds only people who may be emailed (consent-gated in dbt).
            config = build_sync_config(target, mode=mode, consent_gated=True)
            destination_client = build_destination(target)
        except ValueError as error:
            raise SyncSetupError(str(error)) from None
        if config.mode is SyncMode.MIRROR and not destination_client.supports_removal:
            raise SyncSetupError(f"{destination} does not support mirror mode; use upsert")
        missing_audience_columns = missing_columns(con, config)
        if missing_audience_columns:
            raise SyncSetupError(
                f"{AUDIENCE_RELATION} in {settings.duckdb_path} has no column "
                f"{', '.join(missing_audience_columns)}: rebuild it with `personalize run`"
            )
        # The engine resumes unfinished jobs, erases the addresses of activation.esp_erasures and
        # unsubscribes the people of activation.esp_opt_outs (build_sync_config names both) before it diffs.
        return sync(con, config, destination_client, dry_run=dry_run, full=full, progress=progress)
    finally:
        con.close()


SUMMARY_ROWS = (
    ("inserts", "inserts"),
    ("changes", "changes"),
    ("retries", "retries (rejected last time)"),
    ("resends", "resends (--full)"),
    ("removals", "removals"),
    ("invalid", "invalid"),
    ("sent", "sent"),
    ("confirmed", "confirmed"),
    ("rejected", "rejected"),
    ("failed", "failed"),
    ("erased", "erasures (privacy requests)"),
    ("erase_failed", "erasures failed"),
    ("unsubscribed", "unsubscribed (opted out)"),
    ("unsubscribe_failed", "unsubscribes failed"),
)


def _masked(value: Any) -> Any:
    """Sample payloads with email addresses replaced by their digest (terminal output is a log too)."""
    if isinstance(value, dict):
        return {
            k: (f"<sha256:{email_digest(v)}>" if k in _EMAIL_KEYS and isinstance(v, str) else _masked(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def format_summary(result: SyncResult) -> str:
    """The summary table printed after a run; a dry run also shows its sample payloads."""
    title = "dry run of the sync" if result.dry_run else "sync"
    lines = [f"{title} to {result.destination} ({result.mode}): {result.outcome}", ""]
    width = max(len(label) for _, label in SUMMARY_ROWS)
    lines.append(f"  {'':<{width}}  {'rows':>12}")
    for attribute, label in SUMMARY_ROWS:
        lines.append(f"  {label:<{width}}  {getattr(result, attribute):>12,}")
    lines.append(f"  {'duration':<{width}}  {result.duration_seconds:>10.1f} s")
    if result.dry_run and result.samples:
        lines += ["", "sample payloads (emails shown as digests):"]
        lines += [f"  {json.dumps(_masked(sample), default=str)}" for sample in result.samples]
    if result.erase_failed:
        lines += [
            "",
            "failed erasures are listed in reverse_etl.erasures; they are tried again on the next run",
        ]
    if result.unsubscribe_failed:
        lines += ["", "failed unsubscribes are tried again on the next run"]
    if result.rejected or result.failed:
        lines += [
            "",
            "rejected and failed rows are listed in reverse_etl.errors (run_id "
            f"{result.run_id}); they are re-sent on the next run",
        ]
    return "\n".join(lines)
