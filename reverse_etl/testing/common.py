"""Pieces shared by both vendor emulations: request/response shapes, JSON, emails, clocks and ids."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

try:  # orjson is pinned in constraints.txt (a dagster dependency); it parses a 10k-profile job ~2x faster.
    import orjson

    def loads(data: bytes) -> Any:
        """Parse JSON; raise ValueError on malformed input (orjson.JSONDecodeError is a ValueError)."""
        return orjson.loads(data)

    def dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

except ImportError:  # pragma: no cover - exercised only where orjson is absent
    _encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

    def loads(data: bytes) -> Any:
        return json.loads(data)

    def dumps(obj: Any) -> bytes:
        return _encoder.encode(obj).encode()


Clock = Callable[[], float]


@dataclass(slots=True)
class Request:
    """One parsed HTTP request, as the vendor handlers see it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # path parameters from the route template

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def query_one(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


# Deliberately simple and shared by both vendors: one @, a dotted domain of letters/digits/hyphens, a 2+
# letter TLD, no spaces. Real ESPs reject more (role accounts, disposable domains); tests inject those as
# rejects.
_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)


def is_valid_email(email: str) -> bool:
    return len(email) <= 254 and _EMAIL.match(email) is not None


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: the MD5 of the lower-cased address."""
    return hashlib.md5(email.lower().encode()).hexdigest()


def iso_now() -> str:
    """Vendor-style UTC timestamp, e.g. 2024-05-01T12:00:00.123456+00:00."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


class IdSequence:
    """Deterministic ids (a prefix and a counter) so test failures reproduce with the same ids."""

    def __init__(self, prefix: str, width: int) -> None:
        self._prefix = prefix
        self._width = width
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            n = next(self._counter)
        return f"{self._prefix}{n:0{self._width}d}"

    def reset(self) -> None:
        with self._lock:
            self._counter = itertools.count(1)


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    """One endpoint: `template` uses {name} placeholders, each matching one path segment."""

    method: str
    template: str
    handler: Handler


@dataclass(frozen=True)
class Erasure:
    """A permanent deletion requested through a vendor's erasure path (GDPR/CCPA)."""

    vendor: str
    email: str | None
    list_id: str | None = None
    profile_id: str | None = None
    found: bool = True
    at: float = 0.0
