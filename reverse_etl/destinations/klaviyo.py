"""Klaviyo: bulk profile import jobs (upsert by email), bulk subscribe for consenting new people, erasure.

An import never carries consent. Subscriptions go only through the bulk-subscribe endpoint, only for people
whose consent column is true, and only when they are new to this destination.

Crash safety: a submitted job id is stored in state (DeliveryContext.record_job) before the job is polled,
so a resumed run polls it instead of submitting it again. A job lost between its 202 and that write is
re-submitted; that is harmless because imports upsert by email.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
import requests

from reverse_etl.destinations.base import DeliveryContext, Destination, secret_from_env
from reverse_etl.diff import sql_json_object
from reverse_etl.models import BatchResult, Record, Reject, SnapshotRow
from reverse_etl.retry import RETRYABLE_STATUS, RetryPolicy, TransportError, send

log = logging.getLogger(__name__)

JSONAPI = "application/vnd.api+json"
MAX_PROFILES = 10_000
MAX_BYTES = 5 * 1024 * 1024
MAX_SUBSCRIBE = 1_000
STANDARD_ATTRIBUTES = frozenset({"first_name", "last_name", "organization", "title", "image", "locale"})
_INDEX = re.compile(r"^/data/attributes/profiles/data/(\d+)")
_PREFIX = b'{"data":{"type":"profile-bulk-import-job","attributes":{"profiles":{"data":['
_PROFILE_EMAIL = b'{"type":"profile","attributes":{"email":'
_SUBSCRIBE_HEAD = b'{"data":{"type":"profile-subscription-bulk-create-job","attributes":{"profiles":{"data":['
_SUBSCRIBE_CONSENT = b',"subscriptions":{"email":{"marketing":{"consent":"SUBSCRIBED"}}}}}'
MAX_UNSUBSCRIBE = 100  # profiles per bulk-unsubscribe request (Klaviyo's limit)


@dataclass(frozen=True)
class KlaviyoConfig:
    base_url: str = "https://a.klaviyo.com"
    api_key_env: str = "KLAVIYO_API_KEY"
    revision: str = "2025-07-15"
    list_id: str | None = None  # imported profiles are added to this list; subscriptions go to it
    max_profiles: int = MAX_PROFILES
    max_bytes: int = MAX_BYTES
    poll_interval: float = 0.2
    max_poll_interval: float = 5.0
    job_timeout: float = 1800.0
    # Bulk-subscribe requests sent at once (a 1M audience needs a thousand of them); 429s are retried.
    max_connections: int = 4
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if not 1 <= self.max_profiles <= MAX_PROFILES or not 1024 <= self.max_bytes <= MAX_BYTES:
            raise ValueError(f"Klaviyo jobs hold at most {MAX_PROFILES} profiles and {MAX_BYTES} bytes")
        if not 1 <= self.max_connections <= 10:
            raise ValueError("max_connections must be between 1 and 10")


class KlaviyoDestination(Destination):
    name = "klaviyo"
    supports_removal = False  # removing from a list without touching consent is not part of this subset
    supports_unsubscribe = True

    def __init__(self, config: KlaviyoConfig | None = None) -> None:
        self.config = config or KlaviyoConfig()
        # One session per thread: requests.Session is not documented as thread-safe, and subscriptions
        # are sent from a small pool.
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        # Subscribe requests of a run share one pool, so its threads (and their keep-alive connections)
        # serve every job instead of being started for each.
        self._subscribers: ThreadPoolExecutor | None = None
        # Set when a run fails: a job still being polled in the background is left pending at once (the
        # next run polls it) instead of holding the failing run until the job finishes.
        self._abandon = threading.Event()

    # -- connection ------------------------------------------------------------------------------------------
    @property
    def session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers.update(
                {
                    "Authorization": f"Klaviyo-API-Key {secret_from_env(self.config.api_key_env)}",
                    "revision": self.config.revision,
                    "Content-Type": JSONAPI,
                    "Accept": JSONAPI,
                }
            )
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        self._abandon.clear()  # the next run (resumed jobs first) polls again
        if self._subscribers is not None:
            self._subscribers.shutdown()
            self._subscribers = None
        with self._sessions_lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()
        self._local = threading.local()

    def _url(self, path: str) -> str:
        return f"{self.config.base_url.rstrip('/')}/api/{path}"

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return send(self.session, method, self._url(path), self.config.retry, **kwargs)

    # -- payloads --------------------------------------------------------------------------------------------
    def payload(self, record: Record) -> dict[str, Any]:
        if record.fragment is not None:
            return dict(orjson.loads(self.encode(record)))
        attributes: dict[str, Any] = {"email": record.email}
        properties: dict[str, Any] = {}
        for name, value in record.fields.items():
            if name in STANDARD_ATTRIBUTES:
                attributes[name] = value
            else:
                properties[name] = value
        if properties:
            attributes["properties"] = properties
        return {"type": "profile", "attributes": attributes}

    def payload_sql(self, fields: Sequence[tuple[str, str]]) -> str | None:
        """The profile's attributes other than the email (`payload` without it), as the warehouse's JSON."""
        standard = [(name, expr) for name, expr in fields if name in STANDARD_ATTRIBUTES]
        properties = [(name, expr) for name, expr in fields if name not in STANDARD_ATTRIBUTES]
        if properties:
            standard.append(("properties", sql_json_object(properties)))
        return sql_json_object(standard)

    def encode(self, record: Record) -> bytes:
        """The profile as sent: `payload(record)` encoded, or its email spliced into the warehouse's JSON."""
        fragment = record.fragment
        if fragment is None:
            return orjson.dumps(self.payload(record))
        email = orjson.dumps(record.email)
        if fragment == b"{}":
            return _PROFILE_EMAIL + email + b"}}"
        return _PROFILE_EMAIL + email + b"," + fragment[1:] + b"}"

    def _envelope(self, parts: list[bytes]) -> bytes:
        suffix = b"]}}"
        if self.config.list_id:
            rel = {"lists": {"data": [{"type": "list", "id": self.config.list_id}]}}
            suffix += b',"relationships":' + json.dumps(rel, separators=(",", ":")).encode()
        return _PREFIX + b",".join(parts) + suffix + b"}}"

    def batches(self, records: Sequence[Record]) -> Iterator[list[tuple[Record, bytes]]]:
        """Split by profile count and by the measured size of the encoded request body."""
        overhead = len(self._envelope([]))
        batch: list[tuple[Record, bytes]] = []
        size = overhead
        for record in records:
            encoded = self.encode(record)
            extra = len(encoded) + (1 if batch else 0)
            if batch and (len(batch) >= self.config.max_profiles or size + extra > self.config.max_bytes):
                yield batch
                batch, size, extra = [], overhead, len(encoded)
            batch.append((record, encoded))
            size += extra
        if batch:
            yield batch

    # -- upsert ----------------------------------------------------------------------------------------------
    def upsert(self, records: Sequence[Record], ctx: DeliveryContext) -> Iterator[BatchResult]:
        """Three stages at once: this thread encodes job k+2 while job k+1 uploads and job k is finished
        (polled, its import errors read, its new consenting people subscribed), so neither this process nor
        Klaviyo waits for the other. Job ids are recorded in state on this thread before they are polled."""
        new_keys = ctx.new_keys
        self._abandon.clear()
        recorded: deque[tuple[str, list[Record], set[str]]] = deque()
        finishing: deque[Future[BatchResult]] = deque()

        def record(outcomes: list[tuple[str | None, list[Record], BatchResult]]) -> Iterator[BatchResult]:
            # On the caller's thread: state is written there only.
            for job_id, recs, failure in outcomes:
                if job_id is None:
                    yield failure
                    continue
                subscribe = {r.key for r in recs if r.consent and r.key in new_keys}
                ctx.record_job(job_id, job_state(recs, subscribe))
                recorded.append((job_id, recs, subscribe))

        def finish(pending: int) -> None:
            # A job is polled once the next one is accepted: Klaviyo has had that upload's time to run it.
            while len(recorded) > pending:
                finishing.append(finisher.submit(self._finish, *recorded.popleft()))

        def finished(wait: bool) -> Iterator[BatchResult]:
            while finishing and (wait or finishing[0].done()):
                yield finishing.popleft().result()

        # A job accepted but not yet recorded when the process dies is submitted again next run: imports
        # upsert by email.
        with (
            ThreadPoolExecutor(1, thread_name_prefix="klaviyo-submit") as submitter,
            ThreadPoolExecutor(1, thread_name_prefix="klaviyo-finish") as finisher,
        ):
            uploads: deque[Future[list[tuple[str | None, list[Record], BatchResult]]]] = deque()
            try:
                for batch in self.batches(records):
                    uploads.append(submitter.submit(lambda b=batch: list(self._submit(b))))
                    while len(uploads) > 1:
                        yield from record(uploads.popleft().result())
                        finish(pending=1)
                    yield from finished(wait=False)
                while uploads:
                    yield from record(uploads.popleft().result())
                finish(pending=0)
                yield from finished(wait=True)
            except BaseException:
                # The run fails: jobs already accepted are still recorded, so the next run polls them instead
                # of submitting them again; recorded jobs stay pending.
                self._abandon.set()
                for future in finishing:
                    future.cancel()
                for upload in uploads:
                    with contextlib.suppress(Exception):
                        for _ in record(upload.result()):
                            pass  # a failed upload is not confirmed: it is sent again next run
                raise

    def resume(
        self, pending: Sequence[tuple[str, list[dict[str, Any]]]], ctx: DeliveryContext
    ) -> Iterator[BatchResult]:
        for job_id, items in pending:
            recs = [_from_state(item) for item in items]
            yield self._finish(job_id, recs, {item["key"] for item in items if item.get("subscribe")})

    def _submit(
        self, batch: list[tuple[Record, bytes]]
    ) -> Iterator[tuple[str | None, list[Record], BatchResult]]:
        recs = [r for r, _ in batch]
        try:
            response = self._send(
                "POST", "profile-bulk-import-jobs", data=self._envelope([b for _, b in batch])
            )
        except TransportError as exc:
            yield (
                None,
                recs,
                BatchResult(failed=[(r.key, Reject(r.key, None, "transport", str(exc))) for r in recs]),
            )
            return
        status = response.status_code
        if status in (200, 201, 202):
            yield response.json()["data"]["id"], recs, BatchResult()
            return
        detail = _error_detail(response)
        if status in RETRYABLE_STATUS or status in (401, 403, 404) or not 400 <= status < 500:
            yield (
                None,
                recs,
                BatchResult(failed=[(r.key, Reject(r.key, status, "http_error", detail)) for r in recs]),
            )
            return
        if len(batch) == 1:
            yield (
                None,
                recs,
                BatchResult(rejected=[(recs[0], Reject(recs[0].key, status, "invalid", detail))]),
            )
            return
        half = len(batch) // 2  # one bad profile must not sink the whole job
        yield from self._submit(batch[:half])
        yield from self._submit(batch[half:])

    def _finish(self, job_id: str, recs: list[Record], subscribe: set[str]) -> BatchResult:
        """Poll the job, read its import errors, subscribe consenting new people; the result is committed."""

        def failed(status: int | None, code: str, message: str) -> BatchResult:
            return BatchResult(
                failed=[(r.key, Reject(r.key, status, code, message)) for r in recs], job_id=job_id
            )

        try:
            state, failures = self._poll(job_id)
            if state == "missing":  # expired or unknown: nothing confirmed, re-sent on the next run
                return failed(404, "job_missing", f"import job {job_id} not found")
            if state in ("cancelled", "failed"):  # final, nothing imported: dropped, re-sent next run
                return failed(None, "job_" + state, f"import job {job_id} {state}")
            if state != "complete":  # "unknown" or "timeout": the job stays pending, polled next run
                return BatchResult(
                    failed=[
                        (r.key, Reject(r.key, None, "job_" + state, f"import job {job_id}")) for r in recs
                    ]
                )
            errors = self._import_errors(job_id) if failures is None or failures > 0 else {}
        except TransportError as exc:
            return BatchResult(failed=[(r.key, Reject(r.key, None, "transport", str(exc))) for r in recs])
        result = BatchResult(job_id=job_id)
        for index, record in enumerate(recs):
            error = errors.get(index)
            if error is None:
                result.confirmed.append(record)
            else:
                result.rejected.append((record, Reject(record.key, None, error[0], error[1][:500])))
        to_subscribe = [r for r in result.confirmed if r.key in subscribe]
        if to_subscribe:
            unsubscribed = self._subscribe(to_subscribe)
            if unsubscribed:
                # Not confirmed: the next run imports and subscribes them again. Only the requests that
                # failed count, so nobody whose subscription went through is subscribed a second time.
                failed_keys = {r.key for r, _ in unsubscribed}
                result.confirmed = [r for r in result.confirmed if r.key not in failed_keys]
                result.failed = [(r.key, replace(problem, key=r.key)) for r, problem in unsubscribed]
        return result

    def _poll(self, job_id: str) -> tuple[str, int | None]:
        """The job's final status (or "missing", "unknown", "timeout") and its failed_count when reported."""
        deadline = time.monotonic() + self.config.job_timeout
        delay = self.config.poll_interval
        errors = 0
        while True:
            response = self._send("GET", f"profile-bulk-import-jobs/{job_id}")
            if response.status_code == 404:
                return "missing", None
            if response.status_code != 200:
                errors += 1  # each one already went through the retry policy
                if errors >= 3:
                    return "unknown", None  # stays pending: the next run polls it again
            else:
                attributes = response.json()["data"]["attributes"]
                status = attributes["status"]
                if status in ("complete", "cancelled", "failed"):
                    failed = attributes.get("failed_count")
                    # Without a count the import errors are read anyway.
                    return str(status), failed if isinstance(failed, int) else None
            if time.monotonic() > deadline:
                return "timeout", None
            if self._abandon.wait(delay):
                return "unknown", None  # the run failed meanwhile: the job stays pending
            delay = min(self.config.max_poll_interval, delay * 1.5)

    def _import_errors(self, job_id: str) -> dict[int, tuple[str, str]]:
        errors: dict[int, tuple[str, str]] = {}
        url: str | None = self._url(f"profile-bulk-import-jobs/{job_id}/import-errors?page[size]=100")
        while url:
            response = send(self.session, "GET", url, self.config.retry)
            if response.status_code != 200:
                raise TransportError(f"import-errors of {job_id}: HTTP {response.status_code}")
            doc = response.json()
            for item in doc.get("data") or []:
                attrs = item.get("attributes") or {}
                match = _INDEX.match(((attrs.get("source") or {}).get("pointer")) or "")
                if match:
                    errors[int(match.group(1))] = (
                        str(attrs.get("code") or "import_error"),
                        str(attrs.get("detail")),
                    )
            url = (doc.get("links") or {}).get("next")
        return errors

    def _subscribe(self, recs: list[Record]) -> list[tuple[Record, Reject]]:
        """Subscribe `recs` in requests of MAX_SUBSCRIBE, a few at once; return those not subscribed."""
        parts = [recs[start : start + MAX_SUBSCRIBE] for start in range(0, len(recs), MAX_SUBSCRIBE)]
        if len(parts) == 1:
            problems = [self._subscribe_part(parts[0])]
        else:
            with self._sessions_lock:
                if self._subscribers is None:
                    self._subscribers = ThreadPoolExecutor(
                        self.config.max_connections, thread_name_prefix="klaviyo-subscribe"
                    )
                pool = self._subscribers
            problems = list(pool.map(self._subscribe_part, parts))
        return [
            (record, problem)
            for part, problem in zip(parts, problems, strict=True)
            if problem is not None
            for record in part
        ]

    def _subscribe_part(self, part: list[Record]) -> Reject | None:
        # Each profile's JSON is spliced from constant bytes and its encoded email: a full sync subscribes a
        # million people, and building and encoding a dict for each cost more CPU than the requests.
        profiles = b",".join(_PROFILE_EMAIL + orjson.dumps(r.email) + _SUBSCRIBE_CONSENT for r in part)
        relationships = b""
        if self.config.list_id:
            lists = {"list": {"data": {"type": "list", "id": self.config.list_id}}}
            relationships = b',"relationships":' + orjson.dumps(lists)
        body = _SUBSCRIBE_HEAD + profiles + b"]}}" + relationships + b"}}"
        try:
            response = self._send("POST", "profile-subscription-bulk-create-jobs", data=body)
        except TransportError as exc:
            return Reject("", None, "transport", str(exc))
        if response.status_code not in (200, 201, 202, 204):
            return Reject("", response.status_code, "subscribe_failed", _error_detail(response))
        return None

    # -- opt-outs -------------------------------------------------------------------------------------------
    def unsubscribe(self, rows: Sequence[SnapshotRow]) -> dict[str, str]:
        """Bulk-unsubscribe from email marketing, with the list named: the spec warns that a profile not in
        the list given is unsubscribed globally, and without a list every profile is."""
        outcomes: dict[str, str] = {}
        for start in range(0, len(rows), MAX_UNSUBSCRIBE):
            part = rows[start : start + MAX_UNSUBSCRIBE]
            data: dict[str, Any] = {
                "type": "profile-subscription-bulk-delete-job",
                "attributes": {
                    "profiles": {
                        "data": [
                            {
                                "type": "profile",
                                "attributes": {
                                    "email": row.email,
                                    "subscriptions": {"email": {"marketing": {"consent": "UNSUBSCRIBED"}}},
                                },
                            }
                            for row in part
                        ]
                    }
                },
            }
            if self.config.list_id:
                data["relationships"] = {"list": {"data": {"type": "list", "id": self.config.list_id}}}
            try:
                response = self._send("POST", "profile-subscription-bulk-delete-jobs", json={"data": data})
                outcome = (
                    "unsubscribed"
                    if response.status_code in (200, 202, 204)
                    else (f"failed:{response.status_code}")
                )
            except TransportError:
                outcome = "failed"
            outcomes.update(dict.fromkeys((row.key for row in part), outcome))
        return outcomes

    # -- erasure ---------------------------------------------------------------------------------------------
    def erase(self, emails: Sequence[str]) -> dict[str, str]:
        outcomes: dict[str, str] = {}
        for email in emails:
            body = {
                "data": {
                    "type": "data-privacy-deletion-job",
                    "attributes": {"profile": {"data": {"type": "profile", "attributes": {"email": email}}}},
                }
            }
            try:
                response = self._send("POST", "data-privacy-deletion-jobs", json=body)
            except TransportError:
                outcomes[email] = "failed"
                continue
            ok = response.status_code in (200, 202, 204)
            outcomes[email] = "requested" if ok else f"failed:{response.status_code}"
        return outcomes


def job_state(recs: Sequence[Record], subscribe: set[str]) -> dict[str, list[Any]]:
    """What finishing a job needs, column by column: the keys and hashes to commit, the emails to subscribe.

    Not the fields: they are in the submitted job already. Columns, not a dict per record: building and
    encoding ten thousand dicts per job cost more than the state write (StateStore.pending_jobs reads both).
    """
    keys = [r.key for r in recs]
    return {
        "key": keys,
        "email": [r.email for r in recs],
        "row_hash": [r.row_hash for r in recs],
        "consent": [r.consent for r in recs],
        "subscribe": [key in subscribe for key in keys],
    }


def _from_state(item: dict[str, Any]) -> Record:
    fields = item.get("fields") or {}  # present in jobs recorded by earlier versions
    return Record(item["key"], item["email"], fields, item["row_hash"], bool(item.get("consent")))


def _error_detail(response: requests.Response) -> str:
    try:
        doc = response.json()
        return "; ".join(str(e.get("detail")) for e in doc.get("errors", []))[:500]
    except (ValueError, AttributeError):
        return response.text[:500]
