"""Mailchimp Marketing API v3: batch upsert (idempotent by subscriber hash), archive, unsubscribe,
delete-permanent.

Consent: new members get `status_if_new: subscribed` (the audience is consent-gated upstream); an upsert
never sends `status`, so an existing member's status (e.g. unsubscribed in Mailchimp) is never changed by
it. The one status a sync sets is `unsubscribed`, for a person who opted out in the warehouse
(`unsubscribe`). A sync never lifts an unsubscribe: a person who consents again in the warehouse gets
their fields updated but stays unsubscribed until they re-subscribe through Mailchimp (its signup form),
which is also Mailchimp's own rule for unsubscribed contacts.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import orjson
import requests
from requests.adapters import HTTPAdapter

from reverse_etl.destinations.base import DeliveryContext, Destination, secret_from_env
from reverse_etl.models import BatchResult, Record, Reject, SnapshotRow, email_digest
from reverse_etl.retry import RETRYABLE_STATUS, RetryPolicy, TransportError, send

log = logging.getLogger(__name__)

MAX_BATCH = 500
_JSON = {"Content-Type": "application/json"}
MAX_CONNECTIONS = 10


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.lower().encode()).hexdigest()


@dataclass(frozen=True)
class MailchimpConfig:
    base_url: str | None = None  # e.g. http://127.0.0.1:8025/3.0; None: from the key's datacenter suffix
    list_id: str | None = None  # None: $MAILCHIMP_LIST_ID
    api_key_env: str = "MAILCHIMP_API_KEY"
    batch_size: int = MAX_BATCH
    max_connections: int = 4
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ValueError(f"Mailchimp batch_size must be 1..{MAX_BATCH}")
        if not 1 <= self.max_connections <= MAX_CONNECTIONS:
            raise ValueError(f"Mailchimp allows at most {MAX_CONNECTIONS} simultaneous connections")


def _merge_value(value: Any) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return value
    return str(value)


class MailchimpDestination(Destination):
    name = "mailchimp"
    supports_unsubscribe = True

    def __init__(self, config: MailchimpConfig | None = None) -> None:
        self.config = config or MailchimpConfig()
        self._api_key: str | None = None
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    # -- connection ------------------------------------------------------------------------------------------
    @property
    def api_key(self) -> str:
        if self._api_key is None:
            self._api_key = secret_from_env(self.config.api_key_env)
        return self._api_key

    @property
    def base_url(self) -> str:
        if self.config.base_url:
            return self.config.base_url.rstrip("/")
        dc = self.api_key.rsplit("-", 1)[-1]
        return f"https://{dc}.api.mailchimp.com/3.0"

    @property
    def list_id(self) -> str:
        list_id = self.config.list_id or os.environ.get("MAILCHIMP_LIST_ID")
        if not list_id:
            raise RuntimeError("no Mailchimp list id: set MailchimpConfig.list_id or MAILCHIMP_LIST_ID")
        return list_id

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.auth = ("reverse-etl", self.api_key)
            session.mount("http://", HTTPAdapter(pool_maxsize=2))
            session.mount("https://", HTTPAdapter(pool_maxsize=2))
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()
        self._local = threading.local()

    # -- payloads --------------------------------------------------------------------------------------------
    def payload(self, record: Record) -> dict[str, Any]:
        fields = record.fields
        # Hot path (a million calls in a full sync): text values, the usual case, go through unchanged.
        if not all(type(v) is str for v in fields.values()):
            fields = {k: _merge_value(v) for k, v in fields.items()}
        return {"email_address": record.email, "status_if_new": "subscribed", "merge_fields": fields}

    # -- upsert ----------------------------------------------------------------------------------------------
    def upsert(self, records: Sequence[Record], ctx: DeliveryContext) -> Iterator[BatchResult]:
        size = self.config.batch_size
        batches = [list(records[i : i + size]) for i in range(0, len(records), size)]
        if not batches:
            return
        with ThreadPoolExecutor(self.config.max_connections, thread_name_prefix="mailchimp") as pool:
            futures = [pool.submit(self._send_batch, batch) for batch in batches]
            try:
                for future in as_completed(futures):
                    yield future.result()
            finally:
                for future in futures:
                    future.cancel()

    def _send_batch(self, batch: list[Record]) -> BatchResult:
        # Only `errors` is read: the members Mailchimp would echo back (~1 KB each) are left out.
        url = f"{self.base_url}/lists/{self.list_id}?exclude_fields=new_members,updated_members"
        body = orjson.dumps({"members": [self.payload(r) for r in batch], "update_existing": True})
        try:
            response = send(self._session(), "POST", url, self.config.retry, data=body, headers=_JSON)
        except TransportError as exc:
            return BatchResult(failed=[(r.key, Reject(r.key, None, "transport", str(exc))) for r in batch])
        status = response.status_code
        if status == 200:
            # The answer repeats every member in full: orjson parses it several times faster than json.
            return self._batch_outcome(batch, orjson.loads(response.content))
        detail = _problem_detail(response)
        if status in RETRYABLE_STATUS or status in (401, 403, 404):
            # Retries exhausted, or a configuration problem: nothing confirmed, all re-sent next run.
            return BatchResult(failed=[(r.key, Reject(r.key, status, "http_error", detail)) for r in batch])
        if len(batch) == 1:
            record = batch[0]
            log.info("mailchimp rejected %s: HTTP %d", email_digest(record.email), status)
            return BatchResult(rejected=[(record, Reject(record.key, status, "invalid_resource", detail))])
        # A 4xx on the whole batch: split it so one bad record cannot sink the others.
        half = len(batch) // 2
        left, right = self._send_batch(batch[:half]), self._send_batch(batch[half:])
        return BatchResult(
            confirmed=left.confirmed + right.confirmed,
            rejected=left.rejected + right.rejected,
            failed=left.failed + right.failed,
        )

    @staticmethod
    def _batch_outcome(batch: list[Record], doc: dict[str, Any]) -> BatchResult:
        errors: dict[str, dict[str, Any]] = {}
        for error in doc.get("errors") or []:
            errors[str(error.get("email_address", "")).lower()] = error
        result = BatchResult()
        for record in batch:
            error = errors.get(record.email.lower())
            if error is None:
                result.confirmed.append(record)
            else:
                code = error.get("error_code") or "ERROR_GENERIC"
                log.info("mailchimp rejected %s: %s", email_digest(record.email), code)
                result.rejected.append(
                    (record, Reject(record.key, 200, code, str(error.get("error", ""))[:500]))
                )
        return result

    # -- mirror removals: archive ----------------------------------------------------------------------------
    def remove(self, rows: Sequence[SnapshotRow], ctx: DeliveryContext) -> Iterator[BatchResult]:
        chunk = 100
        with ThreadPoolExecutor(self.config.max_connections, thread_name_prefix="mailchimp") as pool:
            for start in range(0, len(rows), chunk):
                part = [r for r in rows[start : start + chunk]]
                result = BatchResult()
                for row, outcome in zip(part, pool.map(self._archive, part), strict=True):
                    if outcome is None:
                        result.removed.append(row.key)
                    else:
                        result.failed.append((row.key, outcome))
                yield result

    def _archive(self, row: SnapshotRow) -> Reject | None:
        if not row.email:
            return None
        url = f"{self.base_url}/lists/{self.list_id}/members/{subscriber_hash(row.email)}"
        try:
            response = send(self._session(), "DELETE", url, self.config.retry)
        except TransportError as exc:
            return Reject(row.key, None, "transport", str(exc))
        if response.status_code in (200, 204, 404):  # 404: never arrived or already gone
            return None
        return Reject(row.key, response.status_code, "archive_failed", _problem_detail(response))

    # -- opt-outs: unsubscribe ------------------------------------------------------------------------------
    def unsubscribe(self, rows: Sequence[SnapshotRow]) -> dict[str, str]:
        """Set each member's status to unsubscribed. Archiving alone (mirror mode) records no consent: an
        archived member that another tool re-adds comes back with its old status, subscribed."""
        with ThreadPoolExecutor(self.config.max_connections, thread_name_prefix="mailchimp") as pool:
            return dict(zip((row.key for row in rows), pool.map(self._unsubscribe, rows), strict=True))

    def _unsubscribe(self, row: SnapshotRow) -> str:
        if not row.email:
            return "not_found"
        url = f"{self.base_url}/lists/{self.list_id}/members/{subscriber_hash(row.email)}"
        try:
            response = send(self._session(), "PATCH", url, self.config.retry, json={"status": "unsubscribed"})
        except TransportError:
            return "failed"
        if response.status_code == 200:
            return "unsubscribed"
        if response.status_code == 404:  # never arrived, or deleted since: nothing to unsubscribe
            return "not_found"
        return f"failed:{response.status_code}"

    # -- erasure ---------------------------------------------------------------------------------------------
    def erase(self, emails: Sequence[str]) -> dict[str, str]:
        outcomes: dict[str, str] = {}
        for email in emails:
            member = f"{self.base_url}/lists/{self.list_id}/members/{subscriber_hash(email)}"
            url = f"{member}/actions/delete-permanent"
            try:
                response = send(self._session(), "POST", url, self.config.retry)
            except TransportError:
                outcomes[email] = "failed"
                continue
            if response.status_code in (200, 204):
                outcomes[email] = "erased"
            elif response.status_code == 404:
                outcomes[email] = "not_found"
            else:
                outcomes[email] = f"failed:{response.status_code}"
        return outcomes


def _problem_detail(response: requests.Response) -> str:
    try:
        doc = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(doc, dict):
        return f"{doc.get('title', '')}: {doc.get('detail', '')}"[:500]
    return str(doc)[:500]
