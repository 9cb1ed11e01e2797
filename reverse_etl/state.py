"""Sync state in the warehouse (schema `reverse_etl` of the same DuckDB file).

Tables:
  snapshot      destination, key -> hash of the mapped fields last confirmed, last status, last_synced_at
  runs          run history with counts and outcome
  errors        per-record rejects and failures (no email: the key identifies the person)
  pending_jobs  asynchronous jobs submitted but not yet confirmed (Klaviyo), so a resumed run polls them
  erasures      explicit erasure requests and their result (email as a sha256 digest)

All writes happen on the caller's thread; confirmed batches are committed in groups (engine.COMMIT_ROWS).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import duckdb
import orjson

from reverse_etl.models import Record, Reject, SnapshotRow, SyncResult, email_sha256, redact_emails


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class StateStore:
    def __init__(self, con: duckdb.DuckDBPyConnection, schema: str = "reverse_etl") -> None:
        if not schema.isidentifier():
            raise ValueError(f"bad state schema name {schema!r}")
        self.con = con
        self.s = schema
        self.ensure()

    def ensure(self) -> None:
        s = self.s
        self.con.execute(f"create schema if not exists {s}")
        self.con.execute(
            f"""create table if not exists {s}.snapshot (
                destination varchar not null, key varchar not null, row_hash varchar,
                email varchar, last_status varchar not null, last_synced_at timestamp,
                primary key (destination, key))"""
        )
        self.con.execute(
            f"""create table if not exists {s}.runs (
                run_id varchar primary key, destination varchar, mode varchar, dry_run boolean,
                started_at timestamp, finished_at timestamp, inserts integer, changes integer,
                removals integer, retries integer, invalid integer, sent integer, confirmed integer,
                rejected integer, removed integer, failed integer, outcome varchar)"""
        )
        self.con.execute(
            f"""create table if not exists {s}.errors (
                run_id varchar, destination varchar, key varchar, http_status integer,
                error_code varchar, message varchar, recorded_at timestamp)"""
        )
        self.con.execute(
            f"""create table if not exists {s}.pending_jobs (
                destination varchar, job_id varchar, run_id varchar, submitted_at timestamp,
                records json, primary key (destination, job_id))"""
        )
        self.con.execute(
            f"""create table if not exists {s}.erasures (
                destination varchar, email_sha256 varchar, requested_at timestamp, outcome varchar)"""
        )

    # -- snapshot --------------------------------------------------------------------------------------------
    @property
    def snapshot_table(self) -> str:
        """The snapshot's qualified name, for planning a run in SQL (reverse_etl.diff.plan_sync)."""
        return f"{self.s}.snapshot"

    def snapshot(self, destination: str) -> dict[str, SnapshotRow]:
        rows = self.con.execute(
            f"select key, row_hash, last_status, email from {self.s}.snapshot where destination = ?",
            [destination],
        ).fetchall()
        return {r[0]: SnapshotRow(r[0], r[1], r[2], r[3]) for r in rows}

    def commit_batch(
        self,
        destination: str,
        run_id: str,
        confirmed: Iterable[Record],
        rejected: Iterable[tuple[Record, Reject]],
        removed: Iterable[str],
        failed: Iterable[tuple[str, Reject]],
        job_id: str | None = None,
        *,
        job_ids: Iterable[str] = (),
    ) -> None:
        """Apply one batch's (or a group of batches') confirmed outcome atomically; `job_id`/`job_ids`: the
        pending jobs these confirmations finish."""
        finished_jobs = [*([job_id] if job_id is not None else []), *job_ids]
        ts = now_utc()
        s = self.s
        confirmed = list(confirmed)
        rejected = list(rejected)
        removed = list(removed)
        failed = list(failed)
        self.con.execute("begin transaction")
        try:
            if confirmed:
                # The columns travel as JSON text: converting Python lists into DuckDB list parameters cost
                # twice as much (a full sync commits a million rows).
                self.con.execute(
                    f"""insert or replace into {s}.snapshot
                        (destination, key, row_hash, email, last_status, last_synced_at)
                        select ?, unnest(from_json(?, '["varchar"]')), unnest(from_json(?, '["varchar"]')),
                               unnest(from_json(?, '["varchar"]')), 'synced', ?""",
                    [
                        destination,
                        orjson.dumps([r.key for r in confirmed]).decode(),
                        orjson.dumps([r.row_hash for r in confirmed]).decode(),
                        orjson.dumps([r.email for r in confirmed]).decode(),
                        ts,
                    ],
                )
            if rejected:
                # Keep the last confirmed hash (if any): the key is re-sent next run because of its status.
                self.con.execute(
                    f"""insert into {s}.snapshot
                        (destination, key, row_hash, email, last_status, last_synced_at)
                        select ?, unnest(?::varchar[]), null, unnest(?::varchar[]), 'rejected', null
                        on conflict (destination, key) do update set last_status = 'rejected'""",
                    [destination, [r.key for r, _ in rejected], [r.email for r, _ in rejected]],
                )
            if removed:
                self.con.execute(
                    f"delete from {s}.snapshot where destination = ? "
                    "and key in (select unnest(?::varchar[]))",
                    [destination, removed],
                )
            errors = [rej for _, rej in rejected] + [rej for _, rej in failed]
            self._insert_errors(destination, run_id, errors, ts)
            if finished_jobs:
                self.con.execute(
                    f"delete from {s}.pending_jobs where destination = ? "
                    "and job_id in (select unnest(?::varchar[]))",
                    [destination, finished_jobs],
                )
            self.con.execute("commit")
        except Exception:
            self.con.execute("rollback")
            raise

    def record_errors(self, destination: str, run_id: str, errors: Iterable[Reject]) -> None:
        self._insert_errors(destination, run_id, list(errors), now_utc())

    def _insert_errors(self, destination: str, run_id: str, errors: list[Reject], ts: datetime) -> None:
        if not errors:
            return
        self.con.execute(
            f"""insert into {self.s}.errors
                select ?, ?, unnest(?::varchar[]), unnest(?::integer[]), unnest(?::varchar[]),
                       unnest(?::varchar[]), ?""",
            [
                run_id,
                destination,
                [e.key for e in errors],
                [e.http_status for e in errors],
                [e.code for e in errors],
                # Vendors quote addresses in their error texts; the state holds none (see redact_emails).
                [redact_emails(e.message) for e in errors],
                ts,
            ],
        )

    def errors(self, destination: str, run_id: str | None = None) -> list[tuple[Any, ...]]:
        sql = (
            f"select run_id, key, http_status, error_code, message from {self.s}.errors where destination = ?"
        )
        params: list[Any] = [destination]
        if run_id is not None:
            sql += " and run_id = ?"
            params.append(run_id)
        return self.con.execute(sql + " order by recorded_at, key", params).fetchall()

    def confirmed_rows_of(self, destination: str, relation: str) -> list[SnapshotRow]:
        """The snapshot rows the destination confirmed whose key is a person_id of `relation`."""
        rows = self.con.execute(
            f"""select key, row_hash, last_status, email from {self.s}.snapshot
                where destination = ? and row_hash is not null
                  and key in (select person_id from {relation})
                order by key""",
            [destination],
        ).fetchall()
        return [SnapshotRow(*row) for row in rows]

    def keys_with_known_address(self, destination: str, records: list[Record]) -> set[str]:
        """The keys of `records` whose address the destination confirmed under another key."""
        confirmed_any = self.con.execute(
            f"select count(*) from (select 1 from {self.s}.snapshot "
            "where destination = ? and row_hash is not null limit 1)",
            [destination],
        ).fetchall()[0][0]
        if not records or not confirmed_any:
            return set()  # a first sync (a million inserts) has nothing to look up
        # The columns travel as JSON text, as in commit_batch: a full sync asks this of a million inserts.
        rows = self.con.execute(
            f"""with asked as (
                    select unnest(from_json(?, '["varchar"]')) as key,
                           unnest(from_json(?, '["varchar"]')) as address
                )
                select asked.key from asked
                where exists (
                    select 1 from {self.s}.snapshot as known
                    where known.destination = ? and known.row_hash is not null
                      and lower(known.email) = asked.address and known.key <> asked.key
                )""",
            [
                orjson.dumps([r.key for r in records]).decode(),
                orjson.dumps([r.email.lower() for r in records]).decode(),
                destination,
            ],
        ).fetchall()
        return {row[0] for row in rows}

    def forget_emails(self, destination: str, emails: Iterable[str]) -> int:
        lowered = [e.strip().lower() for e in emails]
        if not lowered:
            return 0
        rows = self.con.execute(
            f"select key from {self.s}.snapshot where destination = ? and lower(email) in "
            f"(select unnest(?::varchar[]))",
            [destination, lowered],
        ).fetchall()
        self.con.execute(
            f"delete from {self.s}.snapshot where destination = ? and key in (select unnest(?::varchar[]))",
            [destination, [r[0] for r in rows]],
        )
        return len(rows)

    # -- pending asynchronous jobs ---------------------------------------------------------------------------
    def add_pending_job(
        self,
        destination: str,
        run_id: str,
        job_id: str,
        records: dict[str, list[Any]] | list[dict[str, Any]],
    ) -> None:
        """Store a submitted job and what finishing it needs: columns of equal length (e.g. "key" -> keys),
        or a list of one dict per record (what earlier versions wrote)."""
        self.con.execute(
            f"insert or replace into {self.s}.pending_jobs values (?, ?, ?, ?, ?)",
            [destination, job_id, run_id, now_utc(), orjson.dumps(records).decode()],
        )

    def pending_jobs(self, destination: str) -> list[tuple[str, list[dict[str, Any]]]]:
        """Unconfirmed jobs, oldest first, each with one dict per record (whichever form it was stored in)."""
        rows = self.con.execute(
            f"select job_id, records from {self.s}.pending_jobs where destination = ? order by submitted_at",
            [destination],
        ).fetchall()
        return [(r[0], _records(json.loads(r[1]))) for r in rows]

    # -- runs and erasures -----------------------------------------------------------------------------------
    def start_run(self, result: SyncResult) -> None:
        self.con.execute(
            f"insert into {self.s}.runs (run_id, destination, mode, dry_run, started_at, outcome) "
            "values (?, ?, ?, ?, ?, 'running')",
            [result.run_id, result.destination, str(result.mode), result.dry_run, now_utc()],
        )

    def finish_run(self, result: SyncResult) -> None:
        self.con.execute(
            f"""update {self.s}.runs set finished_at = ?, inserts = ?, changes = ?, removals = ?, retries = ?,
                invalid = ?, sent = ?, confirmed = ?, rejected = ?, removed = ?, failed = ?, outcome = ?
                where run_id = ?""",
            [
                now_utc(),
                result.inserts,
                result.changes,
                result.removals,
                result.retries,
                result.invalid,
                result.sent,
                result.confirmed,
                result.rejected,
                result.removed,
                result.failed,
                result.outcome,
                result.run_id,
            ],
        )

    def runs(self, destination: str) -> list[tuple[Any, ...]]:
        return self.con.execute(
            f"select run_id, mode, dry_run, outcome, inserts, changes, removals, sent, confirmed, rejected "
            f"from {self.s}.runs where destination = ? order by started_at",
            [destination],
        ).fetchall()

    def unerased_emails(self, destination: str, relation: str) -> list[str]:
        """The addresses in `relation` (column email) with no erasure at `destination` that went through
        (a failed one is tried again), or that the destination confirmed again since (an erasure forgets
        the address in the snapshot, so only an import job submitted before it and finished after, resumed
        by a later run, can put it back). Matched by digest: the erasures table holds no address."""
        rows = self.con.execute(
            f"""select distinct requested.email from {relation} as requested
                where requested.email is not null and (
                    not exists (
                        select 1 from {self.s}.erasures as done
                        where done.destination = ? and done.outcome not like 'failed%'
                          and done.email_sha256 = sha256(lower(trim(requested.email))))
                    or exists (
                        select 1 from {self.s}.snapshot as delivered
                        where delivered.destination = ? and delivered.row_hash is not null
                          and lower(delivered.email) = lower(trim(requested.email))))
                order by requested.email""",
            [destination, destination],
        ).fetchall()
        return [row[0] for row in rows]

    def record_erasure(self, destination: str, email: str, outcome: str) -> None:
        self.con.execute(
            f"insert into {self.s}.erasures values (?, ?, ?, ?)",
            [destination, email_sha256(email), now_utc(), outcome],
        )


def _records(stored: dict[str, list[Any]] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(stored, list):
        return stored
    names = list(stored)
    return [dict(zip(names, values, strict=True)) for values in zip(*stored.values(), strict=True)]
