"""Request counters for tests and benchmarks (thread-safe; one increment per request)."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

NO_RESPONSE = 0  # status recorded for dropped/timed-out requests, which never got one


@dataclass(frozen=True)
class StatsSnapshot:
    requests: Counter[tuple[str, str, int]] = field(default_factory=Counter)  # (method, template, status)
    bytes_received: int = 0  # request bodies
    bytes_sent: int = 0  # whole responses, status line and headers included

    def count(self, method: str | None = None, template: str | None = None, status: int | None = None) -> int:
        return sum(
            n
            for (m, t, s), n in self.requests.items()
            if (method is None or m == method)
            and (template is None or t == template)
            and (status is None or s == status)
        )

    def as_json(self) -> dict[str, object]:
        return {
            "requests": [
                {"method": m, "template": t, "status": s, "count": n}
                for (m, t, s), n in sorted(self.requests.items())
            ],
            "bytes_received": self.bytes_received,
            "bytes_sent": self.bytes_sent,
        }


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, str, int]] = Counter()
        self._received = 0
        self._sent = 0

    def record(self, method: str, template: str, status: int, received: int, sent: int) -> None:
        with self._lock:
            self._requests[(method, template, status)] += 1
            self._received += received
            self._sent += sent

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            return StatsSnapshot(Counter(self._requests), self._received, self._sent)

    def count(self, method: str | None = None, template: str | None = None, status: int | None = None) -> int:
        return self.snapshot().count(method, template, status)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._received = 0
            self._sent = 0
