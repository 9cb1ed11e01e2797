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
    ERASURE_RELATION,
    OPT_OUT_RELATION,
    MissingSetting,
    build_destination,
    build_sync_config,
    settings_from_env,
)
from reverse_etl.diff import missing_columns
from reverse_etl.engine import erase_requested, relation_exists, sync, unsubscribe_opted_out
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
        # Erasure requests first, down the destination's delete path (a destination of their own: erase()
        # closes it): a person erased since the last sync is deleted, never merely archived as a leaver.
        erasures = erase_requested(con, config, build_destination(target), ERASURE_RELATION, dry_run=dry_run)
        erased = _report(
            erasures,
            progress,
            f"{destination}: {'would erase' if dry_run else 'erased'}",
            "addresses with an erasure request",
        )
        # Explicit opt-outs next: leaving the audience alone would not record them at the ESP.
        opt_outs = unsubscribe_opted_out(
            con, config, build_destination(target), OPT_OUT_RELATION, dry_run=dry_run
        )
        unsubscribed = _report(
            opt_outs,
            progress,
            f"{destination}: {'would unsubscribe' if dry_run else 'unsubscribed'}",
            "people who opted out",
        )
        result = sync(con, config, destination_client, dry_run=dry_run, full=full, progress=progress)
        result.erased, result.erase_failed = erased
        result.unsubscribed, result.unsubscribe_failed = unsubscribed
        return result
    finally:
        con.close()


def _report(outcomes: dict[str, str], progress: Progress | None, done: str, what: str) -> tuple[int, int]:
    """How many of `outcomes` went through and how many failed (tried again next run), said on `progress`."""
    failed = sum(outcome.startswith("failed") for outcome in outcomes.values())
    if progress and outcomes:
        retried = f"; {failed:,} failed and are tried again next run" if failed else ""
        progress(f"{done} {len(outcomes) - failed:,} {what}{retried}")
    return len(outcomes) - failed, failed


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
