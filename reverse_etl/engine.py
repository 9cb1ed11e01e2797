"""The sync engine: diff the audience against state, deliver, commit confirmed batches, keep run history.

    con = duckdb.connect("warehouse.duckdb")
    config = SyncConfig(destination="mailchimp", fields=MAILCHIMP_FIELDS)
    result = sync(con, config, MailchimpDestination(MailchimpConfig(list_id="abc123")))

CLI, Dagster and tests call these same functions.
"""

from __future__ import annotations

import gc
import logging
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from reverse_etl.destinations.base import DeliveryContext, Destination
from reverse_etl.diff import Diff, PayloadSql, Plan, plan_sync, read_audience, withdrawn_consent_keys
from reverse_etl.models import BatchResult, Progress, SyncConfig, SyncMode, SyncResult, email_digest
from reverse_etl.state import StateStore

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 1.0  # seconds between progress lines while sending (the first and last always show)
# Confirmed batches are written to state in groups: one DuckDB transaction per 500-member Mailchimp batch
# cost more than the sending. A kill loses at most one group's confirmations, and those rows are simply
# sent again next run (every destination upserts, so that is an update, never a duplicate).
COMMIT_ROWS = 20_000
COMMIT_SECONDS = 0.5


def _connect(con: duckdb.DuckDBPyConnection | str | Path) -> tuple[duckdb.DuckDBPyConnection, bool]:
    if isinstance(con, duckdb.DuckDBPyConnection):
        return con, False
    return duckdb.connect(str(con)), True


def plan(
    con: duckdb.DuckDBPyConnection | str | Path, config: SyncConfig, *, full: bool = False
) -> tuple[Diff, int]:
    """The diff a run would send now, and the number of invalid rows (reads only)."""
    connection, owned = _connect(con)
    try:
        state = StateStore(connection, config.state_schema)
        planned = plan_sync(connection, config, state.snapshot_table, full=full)
        return planned.diff, len(planned.invalid)
    finally:
        if owned:
            connection.close()


def _plan_without_collections(
    con: duckdb.DuckDBPyConnection,
    config: SyncConfig,
    snapshot_table: str,
    full: bool,
    payload_sql: PayloadSql | None,
) -> Plan:
    """plan_sync with the cyclic garbage collector paused, and its result frozen (gc.freeze).

    A full sync holds a million records. Building them triggered a dozen full collections (2.2 s of CPU for
    a 1M-row plan), and each later collection while sending walked them all again. The plan makes no
    reference cycles, so pausing the collector leaks nothing; frozen objects are still freed by reference
    counting, and the engine unfreezes when the run ends.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        planned = plan_sync(con, config, snapshot_table, full=full, payload_sql=payload_sql)
    finally:
        if was_enabled:
            gc.enable()
    gc.freeze()
    return planned


def sync(
    con: duckdb.DuckDBPyConnection | str | Path,
    config: SyncConfig,
    destination: Destination,
    *,
    dry_run: bool = False,
    full: bool = False,
    progress: Progress | None = None,
) -> SyncResult:
    """Run one sync. A dry run computes counts and sample payloads and sends nothing.

    `full` re-sends every audience row, changed or not (destinations upsert, so nothing is duplicated);
    it repairs a destination edited by hand. Who counts as new (and so may be subscribed) is unchanged.
    """
    connection, owned = _connect(con)
    try:
        return _sync(connection, config, destination, dry_run, full, progress)
    finally:
        if owned:
            connection.close()


def _sync(
    con: duckdb.DuckDBPyConnection,
    config: SyncConfig,
    destination: Destination,
    dry_run: bool,
    full: bool,
    progress: Progress | None,
) -> SyncResult:
    started = time.monotonic()
    if config.mode is SyncMode.MIRROR and not destination.supports_removal:
        raise ValueError(f"{destination.name} does not support mirror mode; use upsert")
    state = StateStore(con, config.state_schema)
    name = config.destination
    result = SyncResult(uuid.uuid4().hex, name, config.mode, dry_run)
    state.start_run(result)

    last_report = [0.0]

    def report(done: int, total: int, verb: str = "sent") -> None:
        now = time.monotonic()
        if progress is None or (0 < done < total and now - last_report[0] < PROGRESS_INTERVAL):
            return
        last_report[0] = now
        progress(f"{name}: {done:,}/{total:,} {verb}")

    buffered = BatchResult()
    buffered_jobs: list[str] = []
    last_flush = [time.monotonic()]

    def flush() -> None:
        nonlocal buffered, buffered_jobs
        group, jobs = buffered, buffered_jobs
        buffered, buffered_jobs = BatchResult(), []
        last_flush[0] = time.monotonic()
        if not (group.confirmed or group.rejected or group.removed or group.failed or jobs):
            return
        state.commit_batch(
            name, result.run_id, group.confirmed, group.rejected, group.removed, group.failed, job_ids=jobs
        )
        result.confirmed += len(group.confirmed)
        result.rejected += len(group.rejected)
        result.removed += len(group.removed)
        result.failed += len(group.failed)

    def commit(batch: BatchResult) -> None:
        buffered.confirmed += batch.confirmed
        buffered.rejected += batch.rejected
        buffered.removed += batch.removed
        buffered.failed += batch.failed
        if batch.job_id is not None:
            buffered_jobs.append(batch.job_id)
        size = len(buffered.confirmed) + len(buffered.rejected) + len(buffered.removed) + len(buffered.failed)
        if size >= COMMIT_ROWS or time.monotonic() - last_flush[0] >= COMMIT_SECONDS:
            flush()

    ctx = DeliveryContext(
        run_id=result.run_id,
        record_job=lambda job_id, records: state.add_pending_job(name, result.run_id, job_id, records),
    )
    try:
        # Erasures and opt-outs first, so that nothing (a slow or failing resumed job) holds them back; and
        # again after the resumed jobs: one of them may have delivered an address erased meanwhile
        # (StateStore.unerased_emails), or someone who has opted out since.
        _erase_and_unsubscribe(con, config, destination, dry_run, progress, result)
        if not dry_run:
            pending = state.pending_jobs(name)
            if pending:
                log.info("%s: resuming %d unconfirmed job(s)", name, len(pending))
                for batch in destination.resume(_without_stale_subscriptions(con, config, pending), ctx):
                    commit(batch)
                flush()  # the diff below must see what the resumed jobs confirmed
                result.resumed_jobs = len(pending)
                _erase_and_unsubscribe(con, config, destination, dry_run, progress, result)
        planned = _plan_without_collections(con, config, state.snapshot_table, full, destination.payload_sql)
        diff, invalid = planned.diff, planned.invalid
        result.inserts, result.changes = len(diff.inserts), len(diff.changes)
        result.retries, result.removals, result.invalid = len(diff.retries), len(diff.removals), len(invalid)
        result.resends = len(diff.resends)
        to_send = diff.to_send
        if progress is not None:
            progress(
                f"{name}: {planned.audience_size:,} audience rows: {result.inserts:,} inserts, "
                f"{result.changes:,} changes, {result.retries:,} retries, {result.resends:,} resends, "
                f"{result.removals:,} removals, {result.invalid:,} invalid"
            )
        if dry_run:
            result.samples = [destination.payload(r) for r in to_send[: config.sample_size]]
            result.outcome = "dry_run"
            report(0, len(to_send), "would be sent")
            return result
        if invalid:
            state.record_errors(name, result.run_id, invalid)
        # New to the destination: inserts, and changes to an address it has never confirmed (at Klaviyo a
        # new address is a new profile, to subscribe when the person consents). An address it already
        # holds under another key (a person_id that changed when identity groups merged) is not new, so it
        # is never subscribed again (which, at Klaviyo, would lift an unsubscribe the person made there).
        readdressed = set(diff.readdressed)
        arriving = [*diff.inserts, *(r for r in diff.changes if r.key in readdressed)]
        ctx.new_keys = {r.key for r in arriving} - state.keys_with_known_address(name, arriving)
        destination.open(result.run_id, read_audience(con, config)[0] if destination.needs_audience else [])
        try:
            if diff.moved:
                # A changed email: the old address is archived (never erased) before the new one is sent.
                # The snapshot keeps the old address until the new one is confirmed, so an archive that
                # fails, or a run killed in between, is simply tried again; a person whose old address could
                # not be archived is not sent this run (their change stays pending).
                not_archived: set[str] = set()
                for batch in destination.remove(diff.moved, ctx):
                    commit(BatchResult(failed=batch.failed))
                    not_archived.update(key for key, _ in batch.failed)
                    result.removed += len(batch.removed)
                if not_archived:
                    to_send = [r for r in to_send if r.key not in not_archived]
            total = len(to_send)
            report(0, total)
            for batch in destination.upsert(to_send, ctx):
                commit(batch)
                result.sent += len(batch.confirmed) + len(batch.rejected) + len(batch.failed)
                report(result.sent, total)
            if diff.rekeyed:
                # Their address is in the audience under its new key (upserted above): only the old key is
                # forgotten, nothing is archived.
                flush()
                state.commit_batch(name, result.run_id, [], [], [row.key for row in diff.rekeyed], [])
                log.info("%s: %d keys replaced by a new key with the same address", name, len(diff.rekeyed))
            if diff.removals:
                done = 0
                for batch in destination.remove(diff.removals, ctx):
                    commit(batch)
                    done += len(batch.removed) + len(batch.failed)
                    report(done, len(diff.removals), "removed")
        finally:
            try:
                flush()  # what the destination confirmed is kept, also when the run fails midway
            finally:
                destination.close()
        failures = result.rejected or result.failed or result.erase_failed or result.unsubscribe_failed
        result.outcome = "partial" if failures else "success"
        return result
    except BaseException:
        result.outcome = "failed"
        raise
    finally:
        gc.unfreeze()  # the run's objects (and whatever else was frozen with them) are collectable again
        result.duration_seconds = time.monotonic() - started
        state.finish_run(result)
        log.info(
            "%s run %s: %s (inserts %d, changes %d, retries %d, removals %d, invalid %d, confirmed %d, "
            "rejected %d, failed %d)",
            name,
            result.run_id,
            result.outcome,
            result.inserts,
            result.changes,
            result.retries,
            result.removals,
            result.invalid,
            result.confirmed,
            result.rejected,
            result.failed,
        )


def _erase_and_unsubscribe(
    con: duckdb.DuckDBPyConnection,
    config: SyncConfig,
    destination: Destination,
    dry_run: bool,
    progress: Progress | None,
    result: SyncResult,
) -> None:
    """Erase the addresses of `config.erasure_relation`, then unsubscribe the people of
    `config.opt_out_relation`, adding the outcomes to `result`."""
    name = config.destination
    if config.erasure_relation:
        erasures = erase_requested(con, config, destination, config.erasure_relation, dry_run=dry_run)
        erased, failed = _report_outcomes(
            erasures,
            progress,
            f"{name}: {'would erase' if dry_run else 'erased'}",
            "addresses with an erasure request",
        )
        result.erased += erased
        result.erase_failed = failed  # the latest pass: a failure a second pass retried is not one
    if config.opt_out_relation:
        opt_outs = unsubscribe_opted_out(con, config, destination, config.opt_out_relation, dry_run=dry_run)
        unsubscribed, failed = _report_outcomes(
            opt_outs,
            progress,
            f"{name}: {'would unsubscribe' if dry_run else 'unsubscribed'}",
            "people who opted out",
        )
        result.unsubscribed += unsubscribed
        result.unsubscribe_failed = failed


def _without_stale_subscriptions(
    con: duckdb.DuckDBPyConnection, config: SyncConfig, pending: list[tuple[str, list[dict[str, Any]]]]
) -> list[tuple[str, list[dict[str, Any]]]]:
    """The pending jobs, each record's "subscribe" (decided when the job was submitted) withdrawn when the
    person has since opted out, asked for erasure or lost consent. A resumed job runs later, and a
    subscription (which can start a welcome flow) must not follow any of those. Someone who merely left the
    audience (capped, control group) keeps theirs: the job's rows are confirmed, and a subscription left
    out now would never be made."""
    asked = {
        item["key"]: str(item.get("email") or "")
        for _, items in pending
        for item in items
        if item.get("subscribe")
    }
    if not asked:
        return pending
    withdrawn = withdrawn_consent_keys(con, config, sorted(asked))
    if config.opt_out_relation and relation_exists(con, config.opt_out_relation):
        rows = con.execute(
            f"select cast(person_id as varchar) from {config.opt_out_relation} "
            "where cast(person_id as varchar) in (select unnest(?::varchar[]))",
            [sorted(asked)],
        ).fetchall()
        withdrawn |= {row[0] for row in rows}
    if config.erasure_relation and relation_exists(con, config.erasure_relation):
        erased = {
            row[0]
            for row in con.execute(
                f"select distinct lower(trim(email)) from {config.erasure_relation} "
                "where lower(trim(email)) in (select unnest(?::varchar[]))",
                [sorted({email.strip().lower() for email in asked.values()})],
            ).fetchall()
        }
        withdrawn |= {key for key, email in asked.items() if email.strip().lower() in erased}
    if not withdrawn:
        return pending
    log.info(
        "%s: %d resumed subscriptions withdrawn (opted out, erased or no consent)",
        config.destination,
        len(withdrawn),
    )
    return [
        (
            job_id,
            [
                dict(item, subscribe=False) if item.get("subscribe") and item["key"] in withdrawn else item
                for item in items
            ],
        )
        for job_id, items in pending
    ]


def _report_outcomes(
    outcomes: dict[str, str], progress: Progress | None, done: str, what: str
) -> tuple[int, int]:
    """How many of `outcomes` went through and how many failed (tried again next run), said on `progress`."""
    failed = sum(outcome.startswith("failed") for outcome in outcomes.values())
    if progress and outcomes:
        retried = f"; {failed:,} failed and are tried again next run" if failed else ""
        progress(f"{done} {len(outcomes) - failed:,} {what}{retried}")
    return len(outcomes) - failed, failed


def erase(
    con: duckdb.DuckDBPyConnection | str | Path,
    config: SyncConfig,
    destination: Destination,
    emails: Sequence[str],
) -> dict[str, str]:
    """Erasure (GDPR/CCPA): the destination's delete path, recorded in state; never part of a sync."""
    connection, owned = _connect(con)
    try:
        state = StateStore(connection, config.state_schema)
        try:
            outcomes = destination.erase(list(emails))
        finally:
            destination.close()
        done = [e for e, outcome in outcomes.items() if not outcome.startswith("failed")]
        state.forget_emails(config.destination, done)
        for email, outcome in outcomes.items():
            state.record_erasure(config.destination, email, outcome)
        return outcomes
    finally:
        if owned:
            connection.close()


def relation_exists(con: duckdb.DuckDBPyConnection, relation: str) -> bool:
    """Whether `schema.table` exists in the warehouse (a relation dbt has not built yet does not)."""
    schema, table = relation.split(".")
    found = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchall()
    return bool(found[0][0])


def unsubscribe_opted_out(
    con: duckdb.DuckDBPyConnection,
    config: SyncConfig,
    destination: Destination,
    relation: str,
    *,
    dry_run: bool = False,
) -> dict[str, str]:
    """Unsubscribe at this destination the people of `relation` (column person_id: an explicit opt-out in
    the warehouse) it holds as synced; the outcomes by key. A dry run reports "would_unsubscribe".

    In upsert mode they are then forgotten in the snapshot, so that if they consent again they are new (at
    Klaviyo: subscribed again). In mirror mode they stay in it, and the sync that follows archives them as
    leavers (Mailchimp: unsubscribed and archived, so they do not count as contacts); until that archive is
    confirmed, the next run unsubscribes them again, which changes nothing."""
    if not destination.supports_unsubscribe or not relation_exists(con, relation):
        return {}
    state = StateStore(con, config.state_schema)
    rows = state.confirmed_rows_of(config.destination, relation)
    if not rows:
        return {}
    if dry_run:
        return dict.fromkeys((row.key for row in rows), "would_unsubscribe")
    try:
        outcomes = destination.unsubscribe(rows)
    finally:
        destination.close()
    done = [key for key, outcome in outcomes.items() if not outcome.startswith("failed")]
    if config.mode is SyncMode.UPSERT:
        state.commit_batch(config.destination, "unsubscribe", [], [], done, [])
    log.info("%s: unsubscribed %d of %d people who opted out", config.destination, len(done), len(outcomes))
    return outcomes


def erase_requested(
    con: duckdb.DuckDBPyConnection,
    config: SyncConfig,
    destination: Destination,
    relation: str,
    *,
    dry_run: bool = False,
) -> dict[str, str]:
    """Erase at this destination every address in `relation` (column email) it has not erased yet, and
    forget them in its snapshot; the outcomes by address. A dry run erases nothing and reports the
    addresses as "would_erase". Run before a sync, so that a person erased since the last one is deleted,
    not archived, and is never counted as a removal. Without the relation (a warehouse built before it
    existed) there is nothing to erase."""
    if not relation_exists(con, relation):
        return {}
    emails = StateStore(con, config.state_schema).unerased_emails(config.destination, relation)
    if not emails:
        return {}
    if dry_run:
        return dict.fromkeys(emails, "would_erase")
    outcomes = erase(con, config, destination, emails)
    log.info(
        "%s: erased %d of %d requested addresses (%s)",
        config.destination,
        sum(not outcome.startswith("failed") for outcome in outcomes.values()),
        len(outcomes),
        ", ".join(email_digest(email) for email in list(outcomes)[:5])
        + (", ..." if len(outcomes) > 5 else ""),
    )
    return outcomes


def run_summary(result: SyncResult) -> dict[str, Any]:
    return {k: v for k, v in vars(result).items() if k != "samples"}
