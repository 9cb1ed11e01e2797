"""Deterministic fault injection: queued transport/HTTP faults and per-record rejects.

Faults are consumed in the order they were queued, so a test can say "the 3rd call to this endpoint gets a
503, the 4th succeeds" and get exactly that on every run. Everything here is guarded by one lock because the
server handles each connection on its own thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class FaultKind(StrEnum):
    RATE_LIMIT = "rate_limit"  # 429 with Retry-After: <retry_after>
    RATE_LIMIT_NO_RETRY_AFTER = "rate_limit_no_retry_after"  # 429, only X-RateLimit-Reset: <retry_after>
    SERVER_ERROR = "server_error"  # 500 (or `status`)
    UNAVAILABLE = "unavailable"  # 503 (or `status`)
    SLOW = "slow"  # sleep `delay` seconds, then serve normally
    TIMEOUT = "timeout"  # hold the connection `delay` seconds without answering, then close it
    DROP = "drop"  # close the connection without any response


_DEFAULT_STATUS = {
    FaultKind.RATE_LIMIT: 429,
    FaultKind.RATE_LIMIT_NO_RETRY_AFTER: 429,
    FaultKind.SERVER_ERROR: 500,
    FaultKind.UNAVAILABLE: 503,
}
DEFAULT_TIMEOUT_HOLD = 10.0


@dataclass(frozen=True)
class FaultSpec:
    """One queued fault.

    Matching: a request matches when its path starts with `path_prefix` and (if given) its method equals
    `method`. The first `skip` matching requests pass untouched, then the next `count` matching requests get
    the fault (`count=None`: every matching request until the fault is removed). A request is matched against
    the queued faults in order and is decided by the first that matches it (skipping counts as deciding).

    `apply=True` runs the real handler first (state changes happen) and then replaces its response with the
    fault: a 500/drop/timeout after the write was applied is how duplicate-create bugs happen in clients that
    retry non-idempotent calls.
    """

    kind: FaultKind
    path_prefix: str = "/"
    method: str | None = None
    count: int | None = 1
    skip: int = 0
    retry_after: int | None = 1  # seconds, for Retry-After (RATE_LIMIT) or X-RateLimit-Reset (NO_RETRY_AFTER)
    delay: float = 0.0  # SLOW: added latency; TIMEOUT: how long to hold (0 means DEFAULT_TIMEOUT_HOLD)
    apply: bool = False
    status: int | None = None  # override the HTTP status of an error fault (e.g. 502, 504)

    def __post_init__(self) -> None:
        if self.count is not None and self.count < 1:
            raise ValueError("count must be >= 1 or None")
        if self.skip < 0 or self.delay < 0:
            raise ValueError("skip and delay must be >= 0")
        if self.kind is FaultKind.SLOW and self.apply:
            raise ValueError("a SLOW fault always applies the request; apply=True is meaningless")

    @property
    def http_status(self) -> int:
        return self.status or _DEFAULT_STATUS.get(self.kind, 0)

    @property
    def hold_seconds(self) -> float:
        return self.delay or DEFAULT_TIMEOUT_HOLD


@dataclass
class FaultHandle:
    """Returned by `FaultInjector.queue`; tells a test how often its fault fired."""

    spec: FaultSpec
    seen: int = 0  # matching requests so far (including skipped ones)
    fired: int = 0

    @property
    def exhausted(self) -> bool:
        return self.spec.count is not None and self.fired >= self.spec.count


@dataclass(frozen=True)
class FiredFault:
    kind: FaultKind
    method: str
    path: str
    applied: bool
    at: float


@dataclass
class RejectRule:
    """Per-record rejects delivered inside a normal response (Mailchimp `errors`, Klaviyo import-errors).

    A record is rejected when its email (compared lower-cased) is in `emails` or `predicate(email)` is true.
    `vendor` limits the rule to "mailchimp" or "klaviyo"; `code`/`message` default to the vendor's generic
    ones. `limit` caps how many records the rule rejects in total (None: unlimited), e.g. "reject once, then
    accept".
    """

    emails: frozenset[str] = frozenset()
    predicate: Callable[[str], bool] | None = None
    vendor: str | None = None
    code: str | None = None
    message: str | None = None
    limit: int | None = None
    rejected: list[str] = field(default_factory=list)

    def matches(self, vendor: str, email: str) -> bool:
        if self.vendor is not None and self.vendor != vendor:
            return False
        if self.limit is not None and len(self.rejected) >= self.limit:
            return False
        lowered = email.lower()
        return lowered in self.emails or (self.predicate is not None and self.predicate(email))


class FaultInjector:
    """Thread-safe queue of faults plus reject rules; owned by the emulator (`esp.faults`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[FaultHandle] = []
        self._rejects: list[RejectRule] = []
        self.history: list[FiredFault] = []

    # -- transport/HTTP faults -------------------------------------------------------------------------------
    def queue(self, spec: FaultSpec) -> FaultHandle:
        handle = FaultHandle(spec)
        with self._lock:
            self._queue.append(handle)
        return handle

    def remove(self, handle: FaultHandle | RejectRule) -> None:
        with self._lock:
            if isinstance(handle, FaultHandle):
                self._queue = [h for h in self._queue if h is not handle]
            else:
                self._rejects = [r for r in self._rejects if r is not handle]

    def pending(self) -> list[FaultHandle]:
        with self._lock:
            return [h for h in self._queue if not h.exhausted]

    def take(self, method: str, path: str) -> FaultSpec | None:
        """The fault for this request, if any; called once per request by the server."""
        with self._lock:
            if not self._queue:
                return None
            for handle in self._queue:
                spec = handle.spec
                if handle.exhausted or not path.startswith(spec.path_prefix):
                    continue
                if spec.method is not None and spec.method.upper() != method:
                    continue
                handle.seen += 1
                if handle.seen <= spec.skip:
                    # The request passes untouched; later faults do not get it, so a queue of faults reads
                    # like a script: "first call fine, next two 503, then a 500".
                    return None
                handle.fired += 1
                self.history.append(FiredFault(spec.kind, method, path, spec.apply, time.time()))
                self._queue = [h for h in self._queue if not h.exhausted]
                return spec
            return None

    # -- per-record rejects ----------------------------------------------------------------------------------
    def reject(
        self,
        emails: Iterable[str] = (),
        *,
        predicate: Callable[[str], bool] | None = None,
        vendor: str | None = None,
        code: str | None = None,
        message: str | None = None,
        limit: int | None = None,
    ) -> RejectRule:
        rule = RejectRule(
            emails=frozenset(e.lower() for e in emails),
            predicate=predicate,
            vendor=vendor,
            code=code,
            message=message,
            limit=limit,
        )
        with self._lock:
            self._rejects.append(rule)
        return rule

    def rejection(self, vendor: str, email: str) -> RejectRule | None:
        """The first rule rejecting this record (and count it), or None."""
        if not self._rejects:  # lock-free fast path: benchmarks run with no rules
            return None
        with self._lock:
            for rule in self._rejects:
                if rule.matches(vendor, email):
                    rule.rejected.append(email)
                    return rule
        return None

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._rejects.clear()
            self.history.clear()
