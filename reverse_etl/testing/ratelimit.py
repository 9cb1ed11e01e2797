"""Klaviyo-style rate limiting: two fixed windows per account and endpoint, burst (1 s) and steady (1 min).

Klaviyo documents "a fixed-window rate limiting algorithm with two distinct windows": exceeding either gives a
429 with Retry-After (whole seconds). Non-429 responses carry RateLimit-Limit/-Remaining/-Reset for the steady
window. A window here starts at the first request after the previous one ended (not at wall-clock second
boundaries), so a quick burst in a test always lands in one window and the outcome does not depend on timing.
"""

from __future__ import annotations

import math
import re
import threading
import time
from dataclasses import dataclass

from reverse_etl.testing.common import Clock


@dataclass(frozen=True)
class RateLimit:
    burst_per_second: int
    steady_per_minute: int

    @classmethod
    def parse(cls, burst: str, steady: str) -> RateLimit:
        """From the specs' `x-klaviyo-ratelimit` strings, e.g. burst "10/s", steady "150/m"."""
        b = re.fullmatch(r"(\d+)/s", burst)
        s = re.fullmatch(r"(\d+)/m", steady)
        if not b or not s:
            raise ValueError(f"unrecognised rate limit {burst!r}/{steady!r}")
        return cls(int(b.group(1)), int(s.group(1)))


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int  # seconds, meaningful when not allowed
    limit: int  # steady window
    remaining: int
    reset: int  # seconds until the steady window resets


class _Window:
    __slots__ = ("length", "capacity", "start", "used")

    def __init__(self, length: float, capacity: int) -> None:
        self.length = length
        self.capacity = capacity
        self.start = -math.inf
        self.used = 0

    def roll(self, now: float) -> None:
        if now >= self.start + self.length:
            self.start = now
            self.used = 0

    def wait(self, now: float) -> float:
        return self.start + self.length - now


class FixedWindowLimiter:
    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], tuple[_Window, _Window]] = {}

    def check(self, key: str, bucket: str, limit: RateLimit) -> Decision:
        """Count one request for (key, bucket) if both windows have room; otherwise refuse it uncounted."""
        now = self._clock()
        with self._lock:
            pair = self._windows.get((key, bucket))
            if pair is None:
                pair = (_Window(1.0, limit.burst_per_second), _Window(60.0, limit.steady_per_minute))
                self._windows[(key, bucket)] = pair
            burst, steady = pair
            burst.roll(now)
            steady.roll(now)
            full = [w for w in pair if w.used >= w.capacity]
            if full:
                wait = max(w.wait(now) for w in full)
                # Klaviyo sends whole seconds; never 0, or a client honouring it would spin.
                return Decision(
                    False, max(1, math.ceil(wait)), steady.capacity, 0, math.ceil(steady.wait(now))
                )
            burst.used += 1
            steady.used += 1
            return Decision(
                True, 0, steady.capacity, steady.capacity - steady.used, max(0, math.ceil(steady.wait(now)))
            )

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()
