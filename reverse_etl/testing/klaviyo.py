"""Klaviyo API subset: bulk profile import jobs, bulk (un)subscribe jobs and data-privacy deletion jobs.

Every request body is validated against the vendor's OpenAPI documents (see openapi.py). Endpoint templates,
rate limits and request schemas all come from the specs, so the emulator follows the spec revision it is
given.

Behaviour emulated on purpose:

* Jobs are asynchronous: a POST returns 202 and a background worker processes the job after `job_delay`
  seconds (queued -> processing -> complete). Imports upsert profiles by identifier and keep their properties.
* An import never changes consent. Only the bulk subscribe/unsubscribe jobs do, and every consent write is
  recorded (`subscription_changes`). Deletion jobs erase the profile and are recorded (`erasures`).
* Documented limits: 10,000 profiles and 5 MB per import (more -> 400 / 413), 100 KB per profile (an import
  error), 1,000 profiles per subscribe and 100 per unsubscribe job, and the per-endpoint burst/steady rate
  limits from `x-klaviyo-ratelimit` (429 with Retry-After).
"""

from __future__ import annotations

import queue
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from reverse_etl.testing.common import (
    Erasure,
    IdSequence,
    Request,
    Response,
    Route,
    dumps,
    is_valid_email,
    iso_now,
    loads,
)
from reverse_etl.testing.faults import FaultInjector
from reverse_etl.testing.openapi import Operation, SpecError
from reverse_etl.testing.ratelimit import Decision, FixedWindowLimiter, RateLimit

VENDOR = "klaviyo"
JSONAPI = "application/vnd.api+json"
IMPORT = "bulk_import_profiles"
GET_IMPORT = "get_bulk_import_profiles_job"
IMPORT_ERRORS = "get_errors_for_bulk_import_profiles_job"
SUBSCRIBE = "bulk_subscribe_profiles"
UNSUBSCRIBE = "bulk_unsubscribe_profiles"
DELETION = "request_profile_deletion"
REQUIRED_OPERATIONS = (IMPORT, GET_IMPORT, IMPORT_ERRORS, SUBSCRIBE, DELETION)

MAX_IMPORT_PROFILES = 10_000
MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_PROFILE_BYTES = 100 * 1024
MAX_SUBSCRIBE_PROFILES = 1_000
MAX_UNSUBSCRIBE_PROFILES = 100
ERRORS_PAGE_DEFAULT, ERRORS_PAGE_MAX = 20, 100
JOB_RETENTION = timedelta(days=7)
REVISION = re.compile(r"^\d{4}-\d{2}-\d{2}(?:\.[A-Za-z0-9_-]+)?$")
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
# Standard profile attributes an import may set (identifiers are handled separately).
PLAIN_ATTRIBUTES = frozenset({"first_name", "last_name", "organization", "locale", "title", "image", "_kx"})


# -- state ---------------------------------------------------------------------------------------------------
@dataclass(slots=True)  # slots: one GC-tracked object per record, not two, at 1M records
class Profile:
    id: str
    email: str | None
    phone_number: str | None
    external_id: str | None
    attributes: dict[str, Any]
    properties: dict[str, Any]
    location: dict[str, Any] | None
    subscriptions: dict[str, str]  # "email.marketing" -> "SUBSCRIBED"/"UNSUBSCRIBED"; absent = never
    lists: frozenset[str]  # immutable: not tracked by the cyclic GC, which matters at a million profiles
    created: str
    updated: str

    def copy(self) -> Profile:
        return replace(
            self,
            attributes=dict(self.attributes),
            properties=dict(self.properties),
            location=dict(self.location) if self.location is not None else None,
            subscriptions=dict(self.subscriptions),
            lists=self.lists,
        )

    def consent(self, channel: str = "email.marketing") -> str:
        return self.subscriptions.get(channel, "NEVER_SUBSCRIBED")


class SubscriptionChange(NamedTuple):
    """One consent write by a subscribe/unsubscribe job (recorded even when the value does not change).

    A named tuple: immutable like a frozen dataclass, and a fifth of its cost to create (one per subscribed
    person, a million in a benchmark)."""

    email: str | None
    profile_id: str
    channel: str  # e.g. "email.marketing"
    old: str
    new: str
    list_id: str | None
    job_id: str
    at: float


@dataclass
class ImportJob:
    id: str
    status: str
    created_at: str
    total_count: int
    list_ids: list[str]
    payload: list[dict[str, Any]] | None
    started_at: str | None = None
    completed_at: str | None = None
    completed_count: int = 0
    failed_count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    profile_ids: list[str] = field(default_factory=list)


@dataclass
class KlaviyoState:
    profiles: dict[str, Profile] = field(default_factory=dict)
    by_email: dict[str, str] = field(default_factory=dict)  # lower-cased email -> profile id
    by_phone: dict[str, str] = field(default_factory=dict)
    by_external_id: dict[str, str] = field(default_factory=dict)
    jobs: dict[str, ImportJob] = field(default_factory=dict)
    creates: Counter[str] = field(default_factory=Counter)  # identifier -> profiles created for it
    subscription_changes: list[SubscriptionChange] = field(default_factory=list)
    erasures: list[Erasure] = field(default_factory=list)


class JobRunner:
    """One background thread that runs submitted work `delay` seconds after submission, in FIFO order."""

    def __init__(self, delay: float, processing_time: float, stop: threading.Event) -> None:
        self.delay = delay
        self.processing_time = processing_time
        self._stop = stop
        self._queue: queue.Queue[tuple[float, int, Callable[[], None]]] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._generation = 0  # bumped by reset(): queued work from before a reset is dropped
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="klaviyo-jobs", daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def submit(self, work: Callable[[], None]) -> None:
        with self._idle:
            self._pending += 1
            generation = self._generation
        self._queue.put((time.monotonic() + self.delay, generation, work))

    def wait_idle(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def reset(self) -> None:
        with self._idle:
            self._generation += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                due, generation, work = self._queue.get(timeout=0.05)
            except queue.Empty:
                continue
            try:
                wait = due - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    return
                if generation == self._generation:
                    work()
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()


# -- responses -----------------------------------------------------------------------------------------------
def error_object(
    status: int, code: str, title: str, detail: str, pointer: str | None = None, parameter: str | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "status": status,
        "code": code,
        "title": title,
        "detail": detail,
    }
    if pointer is not None or parameter is not None:
        error["source"] = {"pointer": pointer} if pointer is not None else {"parameter": parameter}
    return error


def errors_response(status: int, errors: list[dict[str, Any]]) -> Response:
    return Response(status, dumps({"errors": errors}), JSONAPI)


def _invalid(detail: str, pointer: str | None = None, parameter: str | None = None) -> Response:
    return errors_response(400, [error_object(400, "invalid", "Invalid input.", detail, pointer, parameter)])


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="microseconds")


class KlaviyoApi:
    def __init__(
        self,
        operations: Mapping[str, Operation],
        faults: FaultInjector,
        api_key: str,
        runner: JobRunner,
        rate_limits: bool | Mapping[str, RateLimit] = True,
        limiter: FixedWindowLimiter | None = None,
    ) -> None:
        missing = [op for op in REQUIRED_OPERATIONS if op not in operations]
        if missing:
            raise SpecError(f"Klaviyo specs lack operations {missing}; found {sorted(operations)}")
        self.operations = dict(operations)
        self.faults = faults
        self.api_key = api_key
        self.runner = runner
        # The next this-many import jobs are cancelled before they run (as a Klaviyo admin or an account
        # problem can): they report status "cancelled" and import nothing.
        self.cancel_next_jobs = 0
        self.limiter = limiter or FixedWindowLimiter()
        self.rate_limits: dict[str, RateLimit] = {}
        if rate_limits is not False:
            overrides = rate_limits if isinstance(rate_limits, Mapping) else {}
            for op_id, op in self.operations.items():
                limit = overrides.get(op_id, op.rate_limit)
                if limit is not None:
                    self.rate_limits[op_id] = limit
        self._lock = threading.RLock()
        self._state = KlaviyoState()
        self._job_ids = IdSequence("01EMUJOB", 18)
        self._profile_ids = IdSequence("01EMUPRF", 18)
        handlers: dict[str, Callable[[Request], Response]] = {
            IMPORT: self.create_import,
            GET_IMPORT: self.get_import,
            IMPORT_ERRORS: self.get_import_errors,
            SUBSCRIBE: self.subscribe,
            UNSUBSCRIBE: self.unsubscribe,
            DELETION: self.request_deletion,
        }
        # Templates come from the spec's paths, e.g. /api/profile-bulk-import-jobs/{job_id}.
        self.routes = [
            Route(self.operations[op].method, self.operations[op].path, self._guarded(op, handler))
            for op, handler in handlers.items()
            if op in self.operations
        ]

    # -- cross-cutting rules ---------------------------------------------------------------------------------
    def _guarded(self, op_id: str, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        """Auth, revision header and rate limit, in that order, before the handler; rate headers after."""

        def run(req: Request) -> Response:
            denied = self.authenticate(req)
            if denied is not None:
                return denied
            revision = req.header("revision")
            if not revision or not REVISION.match(revision):
                return _invalid(
                    "The 'revision' header is missing or malformed; send the API revision as YYYY-MM-DD.",
                    parameter="revision",
                )
            decision: Decision | None = None
            limit = self.rate_limits.get(op_id)
            if limit is not None:
                decision = self.limiter.check(self.api_key, op_id, limit)
                if not decision.allowed:
                    return self.throttled(decision.retry_after)
            response = handler(req)
            if decision is not None:
                response.headers.extend(
                    [
                        ("RateLimit-Limit", str(decision.limit)),
                        ("RateLimit-Remaining", str(decision.remaining)),
                        ("RateLimit-Reset", str(decision.reset)),
                    ]
                )
            return response

        return run

    def authenticate(self, req: Request) -> Response | None:
        auth = req.header("authorization") or ""
        scheme, _, key = auth.partition(" ")
        if scheme not in ("Klaviyo-API-Key", "Bearer") or not key.strip():
            return errors_response(
                401,
                [
                    error_object(
                        401,
                        "not_authenticated",
                        "Authentication credentials were not provided.",
                        "Missing or invalid authorization scheme. Please use Klaviyo-API-Key.",
                    )
                ],
            )
        if key.strip() != self.api_key:
            return errors_response(
                401,
                [
                    error_object(
                        401,
                        "authentication_failed",
                        "Incorrect authentication credentials.",
                        "Invalid API key.",
                    )
                ],
            )
        return None

    @staticmethod
    def throttled(retry_after: int | None) -> Response:
        wait = (
            f" Expected available in {retry_after} second{'s' if retry_after != 1 else ''}."
            if retry_after
            else ""
        )
        response = errors_response(
            429, [error_object(429, "throttled", "Request was throttled.", f"Request was throttled.{wait}")]
        )
        if retry_after is not None:
            response.headers.append(("Retry-After", str(retry_after)))
        return response

    def error_response(self, status: int, retry_after: int | None) -> Response:
        """Body of an injected error (the server adds Retry-After / X-RateLimit-Reset)."""
        if status == 429:
            return errors_response(
                429, [error_object(429, "throttled", "Request was throttled.", "Request was throttled.")]
            )
        titles = {500: "A server error occurred.", 503: "Service unavailable."}
        title = titles.get(status, "An error occurred.")
        return errors_response(status, [error_object(status, "error", title, f"Injected fault: {title}")])

    @staticmethod
    def not_found(detail: str = "The requested resource was not found.") -> Response:
        return errors_response(404, [error_object(404, "not_found", "Not found.", detail)])

    @staticmethod
    def method_not_allowed() -> Response:
        return errors_response(
            405, [error_object(405, "method_not_allowed", "Method not allowed.", "Method not allowed.")]
        )

    def _body(self, req: Request, op_id: str, max_bytes: int | None = None) -> Any:
        """The validated JSON body, or the Response to send instead."""
        content_type = (req.header("content-type") or "").split(";")[0].strip().lower()
        if content_type not in (JSONAPI, "application/json"):
            return errors_response(
                415,
                [
                    error_object(
                        415,
                        "unsupported_media_type",
                        "Unsupported media type.",
                        f"Content-Type must be {JSONAPI}; got {content_type or 'none'}.",
                    )
                ],
            )
        if max_bytes is not None and len(req.body) > max_bytes:
            return errors_response(
                413,
                [
                    error_object(
                        413,
                        "request_too_large",
                        "Request entity too large.",
                        f"The payload is {len(req.body)} bytes; the maximum allowed payload size is 5MB.",
                    )
                ],
            )
        try:
            body = loads(req.body)
        except ValueError as exc:
            return _invalid(f"The request body is not valid JSON: {exc}", pointer="/")
        validator = self.operations[op_id].body
        # issues() takes the fast path for a valid body and runs jsonschema only for a doubtful one.
        issues = validator.issues(body) if validator is not None else []
        if issues:
            return errors_response(
                400,
                [
                    error_object(
                        400,
                        "invalid",
                        "Invalid input.",
                        f"{issue.pointer or '/'}: {issue.message}",
                        issue.pointer or "/",
                    )
                    for issue in issues
                ],
            )
        return body

    @staticmethod
    def _base(req: Request) -> str:
        return f"http://{req.header('host') or '127.0.0.1'}"

    # -- bulk import -----------------------------------------------------------------------------------------
    def create_import(self, req: Request) -> Response:
        body = self._body(req, IMPORT, MAX_IMPORT_BYTES)
        if isinstance(body, Response):
            return body
        data = body["data"]
        profiles = data["attributes"]["profiles"]["data"]
        if len(profiles) > MAX_IMPORT_PROFILES:
            return _invalid(
                f"A bulk import job accepts at most {MAX_IMPORT_PROFILES} profiles; got {len(profiles)}.",
                pointer="/data/attributes/profiles/data",
            )
        if not profiles:
            return _invalid(
                "A bulk import job needs at least one profile.", pointer="/data/attributes/profiles/data"
            )
        lists = ((data.get("relationships") or {}).get("lists") or {}).get("data") or []
        job = ImportJob(
            id=self._job_ids.next(),
            status="queued",
            created_at=iso_now(),
            total_count=len(profiles),
            list_ids=[item["id"] for item in lists],
            payload=profiles,
        )
        with self._lock:
            self._state.jobs[job.id] = job
        self.runner.submit(lambda: self._process_import(job))
        return Response(202, dumps({"data": self._job_json(job, self._base(req))}), JSONAPI)

    def _job_json(self, job: ImportJob, base: str) -> dict[str, Any]:
        url = f"{base}/api/profile-bulk-import-jobs/{job.id}"
        created = datetime.fromisoformat(job.created_at)
        return {
            "type": "profile-bulk-import-job",
            "id": job.id,
            "attributes": {
                "status": job.status,
                "created_at": job.created_at,
                "total_count": job.total_count,
                "completed_count": job.completed_count,
                "failed_count": job.failed_count,
                "completed_at": job.completed_at,
                "expires_at": _iso(created + JOB_RETENTION),
                "started_at": job.started_at,
            },
            "relationships": {
                "lists": {
                    "data": [{"type": "list", "id": list_id} for list_id in job.list_ids],
                    "links": {"self": f"{url}/relationships/lists", "related": f"{url}/lists"},
                },
                "import-errors": {"links": {"related": f"{url}/import-errors"}},
            },
            "links": {"self": url},
        }

    def get_import(self, req: Request) -> Response:
        with self._lock:
            job = self._state.jobs.get(req.params["job_id"])
            if job is None:
                return self.not_found(f"No profile-bulk-import-job with id {req.params['job_id']}.")
            doc = {
                "data": self._job_json(job, self._base(req)),
                "links": {"self": self._base(req) + req.path},
            }
        return Response(200, dumps(doc), JSONAPI)

    def get_import_errors(self, req: Request) -> Response:
        job_id = req.params["id"]
        try:
            size = int(req.query_one("page[size]") or ERRORS_PAGE_DEFAULT)
            offset = int(req.query_one("page[cursor]") or 0)
        except ValueError:
            return _invalid("page[size] and page[cursor] must be integers.", parameter="page[size]")
        if not 1 <= size <= ERRORS_PAGE_MAX or offset < 0:
            return _invalid(f"page[size] must be between 1 and {ERRORS_PAGE_MAX}.", parameter="page[size]")
        with self._lock:
            job = self._state.jobs.get(job_id)
            if job is None:
                return self.not_found(f"No profile-bulk-import-job with id {job_id}.")
            page = job.errors[offset : offset + size]
            more = offset + size < len(job.errors)
        url = f"{self._base(req)}/api/profile-bulk-import-jobs/{job_id}/import-errors"
        links = {"self": f"{url}?page[size]={size}&page[cursor]={offset}"}
        if more:
            links["next"] = f"{url}?page[size]={size}&page[cursor]={offset + size}"
        if offset:
            links["prev"] = f"{url}?page[size]={size}&page[cursor]={max(0, offset - size)}"
        return Response(200, dumps({"data": page, "links": links}), JSONAPI)

    def _process_import(self, job: ImportJob) -> None:
        with self._lock:
            if self.cancel_next_jobs > 0:
                self.cancel_next_jobs -= 1
                job.status = "cancelled"
                job.payload = None
                return
            job.status = "processing"
            job.started_at = iso_now()
        if self.runner.processing_time:
            time.sleep(self.runner.processing_time)
        profiles = job.payload or []
        sizes = [len(dumps(p)) for p in profiles]  # outside the lock: the 100 KB per-profile limit
        now = iso_now()  # one timestamp per job: formatting one per profile cost more than the upsert
        lists = frozenset(job.list_ids)  # one set per job, shared by the profiles new to all of its lists
        with self._lock:
            if self._state.jobs.get(job.id) is not job:
                return  # the emulator was reset while this job waited
            for index, raw in enumerate(profiles):
                if sizes[index] > MAX_PROFILE_BYTES:
                    error: tuple[str, str, str] | None = ("", "invalid", "Profile payload exceeds 100KB.")
                else:
                    error = self._import_one(job, raw, now, lists)
                if error is None:
                    job.completed_count += 1
                else:
                    where, code, detail = error
                    self._import_error(
                        job, raw, f"/data/attributes/profiles/data/{index}{where}", code, detail
                    )
            job.payload = None  # a 10k job holds ~3 MB of parsed JSON; nothing needs it once applied
            job.status = "complete"
            job.completed_at = iso_now()

    def _import_error(self, job: ImportJob, raw: Any, pointer: str, code: str, detail: str) -> None:
        job.failed_count += 1
        job.errors.append(
            {
                "type": "import-error",
                "id": str(uuid.uuid4()),
                "attributes": {
                    "code": code,
                    "title": "Invalid input." if code == "invalid" else "Import error.",
                    "detail": detail,
                    "source": {"pointer": pointer},
                    "original_payload": raw,
                },
            }
        )

    def _import_one(
        self, job: ImportJob, raw: dict[str, Any], now: str, lists: frozenset[str]
    ) -> tuple[str, str, str] | None:
        """Upsert one profile (lock held) and add it to `lists` (the job's); when rejected return (pointer
        suffix, code, detail)."""
        attrs = raw.get("attributes") or {}
        email = attrs.get("email")
        phone = attrs.get("phone_number")
        external_id = attrs.get("external_id")
        profile_id = raw.get("id")
        if not (email or phone or external_id or profile_id):
            return (
                "/attributes",
                "invalid",
                "A profile needs at least one identifier: email, phone_number, external_id or id.",
            )
        if email is not None and not is_valid_email(email):
            return "/attributes/email", "invalid", f"Invalid email address: {email!r}."
        if phone is not None and not E164.match(phone):
            return "/attributes/phone_number", "invalid", f"Invalid phone number (E.164): {phone!r}."
        rule = self.faults.rejection(VENDOR, email or external_id or phone or profile_id)
        if rule is not None:
            return "", rule.code or "invalid", rule.message or "The profile was rejected (injected)."
        found, conflict = self._resolve(profile_id, email, phone, external_id)
        if conflict:
            return "", "duplicate_profile", conflict
        profile = found or self._new_profile(email, phone, external_id, now)
        self._apply_import(profile, raw, attrs, now)
        if lists and not lists <= profile.lists:
            profile.lists = profile.lists | lists if profile.lists else lists
        job.profile_ids.append(profile.id)
        return None

    def _resolve(
        self, profile_id: str | None, email: str | None, phone: str | None, external_id: str | None
    ) -> tuple[Profile | None, str | None]:
        """The existing profile these identifiers name, or a conflict when they name different profiles."""
        state = self._state
        if email and not (profile_id or phone or external_id):  # the common case: one dict lookup
            found_id = state.by_email.get(email.lower())
            return (state.profiles[found_id] if found_id else None), None
        ids: set[str] = set()
        if profile_id:
            if profile_id not in state.profiles:
                return None, f"No profile with id {profile_id}."
            ids.add(profile_id)
        if email and (found_id := state.by_email.get(email.lower())):
            ids.add(found_id)
        if phone and (found_id := state.by_phone.get(phone)):
            ids.add(found_id)
        if external_id and (found_id := state.by_external_id.get(external_id)):
            ids.add(found_id)
        if len(ids) > 1:
            return None, "The identifiers of this profile belong to different existing profiles."
        return (state.profiles[ids.pop()] if ids else None), None

    def _new_profile(
        self, email: str | None, phone: str | None, external_id: str | None, now: str | None = None
    ) -> Profile:
        now = now or iso_now()
        profile = Profile(
            id=self._profile_ids.next(),
            email=None,
            phone_number=None,
            external_id=None,
            attributes={},
            properties={},
            location=None,
            subscriptions={},
            lists=frozenset(),
            created=now,
            updated=now,
        )
        self._state.profiles[profile.id] = profile
        key = email.lower() if email else f"external_id:{external_id}" if external_id else f"phone:{phone}"
        self._state.creates[key] += 1
        return profile

    def _set_identifiers(
        self, profile: Profile, email: str | None, phone: str | None, external_id: str | None
    ) -> None:
        state = self._state
        if email and email != profile.email:
            if profile.email:
                state.by_email.pop(profile.email.lower(), None)
            profile.email = email
            state.by_email[email.lower()] = profile.id
        if phone and phone != profile.phone_number:
            if profile.phone_number:
                state.by_phone.pop(profile.phone_number, None)
            profile.phone_number = phone
            state.by_phone[phone] = profile.id
        if external_id and external_id != profile.external_id:
            if profile.external_id:
                state.by_external_id.pop(profile.external_id, None)
            profile.external_id = external_id
            state.by_external_id[external_id] = profile.id

    def _apply_import(self, profile: Profile, raw: dict[str, Any], attrs: dict[str, Any], now: str) -> None:
        """Upsert semantics: given fields overwrite, omitted fields stay; consent is never touched here."""
        self._set_identifiers(
            profile, attrs.get("email"), attrs.get("phone_number"), attrs.get("external_id")
        )
        for name, value in attrs.items():
            if name in PLAIN_ATTRIBUTES:
                profile.attributes[name] = value
        if "location" in attrs:
            location = attrs["location"]
            profile.location = None if location is None else {**(profile.location or {}), **location}
        properties = attrs.get("properties")
        if properties:
            profile.properties.update(properties)
        meta = raw.get("meta")
        if meta and meta.get("patch_properties"):
            self._patch_properties(profile, meta["patch_properties"])
        profile.updated = now

    @staticmethod
    def _patch_properties(profile: Profile, patch: dict[str, Any]) -> None:
        for name, value in (patch.get("append") or {}).items():
            current = profile.properties.get(name)
            items = current if isinstance(current, list) else ([] if current is None else [current])
            profile.properties[name] = items + (value if isinstance(value, list) else [value])
        for name, value in (patch.get("unappend") or {}).items():
            current = profile.properties.get(name)
            if isinstance(current, list):
                drop = value if isinstance(value, list) else [value]
                profile.properties[name] = [v for v in current if v not in drop]
        unset = patch.get("unset")
        for name in [unset] if isinstance(unset, str) else unset or []:
            profile.properties.pop(name, None)

    # -- consent ---------------------------------------------------------------------------------------------
    def subscribe(self, req: Request) -> Response:
        return self._consent_job(req, SUBSCRIBE, "SUBSCRIBED", MAX_SUBSCRIBE_PROFILES)

    def unsubscribe(self, req: Request) -> Response:
        return self._consent_job(req, UNSUBSCRIBE, "UNSUBSCRIBED", MAX_UNSUBSCRIBE_PROFILES)

    def _consent_job(self, req: Request, op_id: str, consent: str, max_profiles: int) -> Response:
        body = self._body(req, op_id)
        if isinstance(body, Response):
            return body
        data = body["data"]
        attributes = data["attributes"]
        profiles = attributes["profiles"]["data"]
        base = "/data/attributes/profiles/data"
        if not profiles or len(profiles) > max_profiles:
            return _invalid(f"Send between 1 and {max_profiles} profiles per job; got {len(profiles)}.", base)
        historical = bool(attributes.get("historical_import"))
        for index, item in enumerate(profiles):
            attrs = item["attributes"]
            email, phone = attrs.get("email"), attrs.get("phone_number")
            subs = attrs.get("subscriptions") or {}
            if subs.get("email") is not None and not (email or item.get("id")):
                return _invalid(
                    "The email channel needs an email address.", f"{base}/{index}/attributes/email"
                )
            if subs.get("sms") is not None and not (phone or item.get("id")):
                return _invalid(
                    "The sms channel needs a phone number.", f"{base}/{index}/attributes/phone_number"
                )
            if email is not None and not is_valid_email(email):
                return _invalid(f"Invalid email address: {email!r}.", f"{base}/{index}/attributes/email")
            if phone is not None and not E164.match(phone):
                return _invalid(
                    f"Invalid phone number (E.164): {phone!r}.", f"{base}/{index}/attributes/phone_number"
                )
            for channel, params in subs.items():
                for kind, param in (params or {}).items():
                    if not isinstance(param, dict):
                        continue
                    at = param.get("consented_at")
                    if (at is not None) is historical or (at is None and "consent" not in param):
                        continue  # the usual case; the pointer below is formatted only for an error
                    where = f"{base}/{index}/attributes/subscriptions/{channel}/{kind}/consented_at"
                    if at is not None and not historical:
                        return _invalid("consented_at is only allowed with historical_import: true.", where)
                    if historical and at is None and "consent" in param:
                        return _invalid("historical_import: true requires consented_at.", where)
        list_data = ((data.get("relationships") or {}).get("list") or {}).get("data")
        list_id = list_data["id"] if list_data else None
        job_id = self._job_ids.next()
        state = self._state
        self.runner.submit(lambda: self._apply_consent(state, job_id, profiles, consent, list_id))
        return Response(202, b"", JSONAPI)

    def _apply_consent(
        self,
        state: KlaviyoState,
        job_id: str,
        profiles: list[dict[str, Any]],
        consent: str,
        list_id: str | None,
    ) -> None:
        now = time.time()
        updated = iso_now()  # one timestamp per job, as imports do
        only_list = frozenset((list_id,)) if list_id is not None else frozenset()
        with self._lock:
            if self._state is not state:
                return  # the emulator was reset while this job waited
            changes = state.subscription_changes
            for item in profiles:
                attrs = item["attributes"]
                email, phone = attrs.get("email"), attrs.get("phone_number")
                found, conflict = self._resolve(item.get("id"), email, phone, None)
                if conflict:
                    continue  # Klaviyo reports these in its own UI only; nothing to apply
                profile = found or self._new_profile(email, phone, None)
                self._set_identifiers(profile, email, phone, None)
                for channel, params in (attrs.get("subscriptions") or {}).items():
                    for kind, param in (params or {}).items():
                        if not isinstance(param, dict) or "consent" not in param:
                            continue
                        key = f"{channel}.{kind}"
                        old = profile.consent(key)
                        profile.subscriptions[key] = consent
                        changes.append(
                            SubscriptionChange(
                                profile.email, profile.id, key, old, consent, list_id, job_id, now
                            )
                        )
                if list_id is not None:
                    if consent == "SUBSCRIBED":
                        profile.lists = profile.lists | only_list
                    else:
                        profile.lists = profile.lists - only_list
                profile.updated = updated

    # -- erasure ---------------------------------------------------------------------------------------------
    def request_deletion(self, req: Request) -> Response:
        body = self._body(req, DELETION)
        if isinstance(body, Response):
            return body
        profile = body["data"]["attributes"]["profile"]["data"]
        attrs = profile.get("attributes") or {}
        given = {
            name: value
            for name, value in (
                ("id", profile.get("id")),
                ("email", attrs.get("email")),
                ("phone_number", attrs.get("phone_number")),
            )
            if value
        }
        if len(given) != 1:
            return _invalid(
                "Provide exactly one of email, phone_number or id to identify the profile to delete.",
                "/data/attributes/profile/data",
            )
        ((kind, value),) = given.items()
        if kind == "email" and not is_valid_email(value):
            return _invalid(
                f"Invalid email address: {value!r}.", "/data/attributes/profile/data/attributes/email"
            )
        state = self._state
        self.runner.submit(lambda: self._erase(state, kind, value))
        return Response(202, b"", JSONAPI)

    def _erase(self, state: KlaviyoState, kind: str, value: str) -> None:
        with self._lock:
            if self._state is not state:
                return  # the emulator was reset while this job waited
            if kind == "id":
                profile_id: str | None = value if value in state.profiles else None
            else:
                index = state.by_email if kind == "email" else state.by_phone
                profile_id = index.get(value.lower() if kind == "email" else value)
            profile = state.profiles.pop(profile_id, None) if profile_id else None
            if profile is not None:
                if profile.email:
                    state.by_email.pop(profile.email.lower(), None)
                if profile.phone_number:
                    state.by_phone.pop(profile.phone_number, None)
                if profile.external_id:
                    state.by_external_id.pop(profile.external_id, None)
            email = profile.email if profile else (value if kind == "email" else None)
            state.erasures.append(
                Erasure(
                    VENDOR,
                    email.lower() if email else None,
                    None,
                    profile.id if profile else None,
                    profile is not None,
                    time.time(),
                )
            )

    # -- accessors for tests ---------------------------------------------------------------------------------
    def profiles(self) -> dict[str, Profile]:
        """Copies of all profiles that have an email, keyed by lower-cased email."""
        with self._lock:
            return {p.email.lower(): p.copy() for p in self._state.profiles.values() if p.email}

    def profile(self, email: str) -> Profile | None:
        with self._lock:
            profile_id = self._state.by_email.get(email.lower())
            return self._state.profiles[profile_id].copy() if profile_id else None

    def list_members(self, list_id: str) -> dict[str, Profile]:
        """Copies of the profiles in a list (by import relationship or subscription), keyed by email."""
        return {email: p for email, p in self.profiles().items() if list_id in p.lists}

    def profile_count(self) -> int:
        with self._lock:
            return len(self._state.profiles)

    def jobs(self) -> list[ImportJob]:
        """Copies of all import jobs, in creation order (a lost 202 followed by a retry shows up as two)."""
        with self._lock:
            return [
                replace(j, errors=list(j.errors), profile_ids=list(j.profile_ids))
                for j in self._state.jobs.values()
            ]

    def job(self, job_id: str) -> ImportJob | None:
        with self._lock:
            job = self._state.jobs.get(job_id)
            return replace(job, errors=list(job.errors), profile_ids=list(job.profile_ids)) if job else None

    @property
    def creates(self) -> Counter[str]:
        with self._lock:
            return Counter(self._state.creates)

    @property
    def subscription_changes(self) -> list[SubscriptionChange]:
        with self._lock:
            return list(self._state.subscription_changes)

    @property
    def erasures(self) -> list[Erasure]:
        with self._lock:
            return list(self._state.erasures)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every submitted job has been processed."""
        return self.runner.wait_idle(timeout)

    def reset(self) -> None:
        self.runner.reset()
        with self._lock:
            self._state = KlaviyoState()
        self.limiter.reset()
        self._job_ids.reset()
        self._profile_ids.reset()
