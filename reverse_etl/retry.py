"""HTTP with retries: exponential backoff with jitter, honouring Retry-After and rate-limit reset headers."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import requests

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_delay: float = 0.5  # first backoff; doubles per attempt
    max_delay: float = 30.0
    max_retry_after: float = 300.0  # never wait longer than this for a server-requested delay
    timeout: float = 60.0  # per request (connect and read)


class TransportError(Exception):
    """Retries exhausted on timeouts or connection errors (no HTTP status)."""


def _header_seconds(response: requests.Response) -> float | None:
    for name in ("Retry-After", "X-RateLimit-Reset", "RateLimit-Reset"):
        raw = response.headers.get(name)
        if not raw:
            continue
        raw = raw.strip()
        try:
            value = float(raw)
        except ValueError:
            try:
                value = parsedate_to_datetime(raw).timestamp() - time.time()
            except (TypeError, ValueError):
                continue
        else:
            if value > 1e9:  # an epoch timestamp rather than a number of seconds
                value -= time.time()
        return max(0.0, value)
    return None


def backoff_delay(policy: RetryPolicy, attempt: int, rng: random.Random | None = None) -> float:
    """Exponential with jitter: uniform in [d/2, d] for d = base * 2^(attempt-1), capped."""
    d = min(policy.max_delay, policy.base_delay * (2 ** (attempt - 1)))
    return (rng or random).uniform(d / 2, d)


def wait_seconds(policy: RetryPolicy, response: requests.Response | None, attempt: int) -> float:
    if response is not None and response.status_code == 429:
        told = _header_seconds(response)
        if told is not None:
            return min(policy.max_retry_after, told) + random.uniform(0, min(0.1, policy.base_delay))
    return backoff_delay(policy, attempt)


def send(
    session: requests.Session,
    method: str,
    url: str,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: Any,
) -> requests.Response:
    """The first non-retryable response, or the last retryable one when attempts run out.

    Raises TransportError when every attempt ended in a timeout or connection error.
    """
    last_error: Exception | None = None
    for attempt in range(1, policy.max_attempts + 1):
        try:
            response = session.request(method, url, timeout=policy.timeout, **kwargs)
        except (requests.Timeout, requests.ConnectionError) as exc:
            last_error = exc
            log.info("%s %s: %s (attempt %d)", method, url.split("?")[0], type(exc).__name__, attempt)
            if attempt < policy.max_attempts:
                sleep(backoff_delay(policy, attempt))
            continue
        if response.status_code not in RETRYABLE_STATUS or attempt == policy.max_attempts:
            return response
        delay = wait_seconds(policy, response, attempt)
        log.info("%s %s: HTTP %d, retrying in %.2fs", method, url.split("?")[0], response.status_code, delay)
        response.close()
        sleep(delay)
    raise TransportError(f"{method} {url.split('?')[0]}: {type(last_error).__name__}: {last_error}")
