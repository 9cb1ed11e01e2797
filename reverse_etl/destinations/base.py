"""The destination interface the engine drives."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from reverse_etl.models import BatchResult, Record, SnapshotRow


@dataclass
class DeliveryContext:
    """Hooks from the engine: `record_job` stores a submitted job id in state before it is polled."""

    run_id: str
    # (job id, what finishing it needs: a dict of equally long columns, e.g. "key" -> keys)
    record_job: Callable[[str, dict[str, list[Any]]], None]
    new_keys: set[str] = field(default_factory=set)  # keys never confirmed before (e.g. to subscribe)


class Destination(ABC):
    name: str = "destination"
    supports_removal: bool = True
    # Whether `unsubscribe` exists: how an ESP hears of an explicit opt-out made in the warehouse. Leaving the
    # audience is not enough: upsert mode leaves leavers alone, and an archived member re-added by another
    # tool comes back subscribed.
    supports_unsubscribe: bool = False
    # Whether `open` needs the whole audience; the others get an empty one and the engine never reads
    # unchanged rows into Python.
    needs_audience: bool = False

    def open(self, run_id: str, audience: Sequence[Record]) -> None:  # noqa: B027 - optional hook
        """Called once per (non-dry) run; `audience` is the full current audience if `needs_audience`."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Called at the end of a run, also after errors."""

    @abstractmethod
    def payload(self, record: Record) -> dict[str, Any]:
        """The per-record payload as sent (for dry-run samples)."""

    def payload_sql(self, fields: Sequence[tuple[str, str]]) -> str | None:
        """A SQL expression for the JSON text of a record's mapped fields in this destination's shape, given
        (destination field, JSON-safe SQL expression) pairs, or None (the default) to build payloads from
        `Record.fields` in Python. When given, `plan_sync` puts its value in `Record.fragment` (and leaves
        `fields` empty): the warehouse encodes a million rows faster than Python builds and encodes them."""
        return None

    @abstractmethod
    def upsert(self, records: Sequence[Record], ctx: DeliveryContext) -> Iterator[BatchResult]:
        """Send inserts/changes; yield one result per batch as soon as the destination confirmed it."""

    def remove(self, rows: Sequence[SnapshotRow], ctx: DeliveryContext) -> Iterator[BatchResult]:
        """Mirror mode: take people who left the audience out of it (never an erasure)."""
        raise NotImplementedError(f"{self.name} does not support removals")

    def resume(
        self, pending: Sequence[tuple[str, list[dict[str, Any]]]], ctx: DeliveryContext
    ) -> Iterator[BatchResult]:
        """Finish jobs a killed run submitted but never confirmed."""
        return iter(())

    def unsubscribe(self, rows: Sequence[SnapshotRow]) -> dict[str, str]:
        """Unsubscribe people who opted out in the warehouse from marketing; returns key -> outcome
        ("unsubscribed", or "failed..." to be tried again)."""
        raise NotImplementedError(f"{self.name} does not support unsubscribing")

    def erase(self, emails: Sequence[str]) -> dict[str, str]:
        """Permanently delete people (GDPR/CCPA); returns email -> outcome."""
        raise NotImplementedError(f"{self.name} does not support erasure")


def secret_from_env(var: str) -> str:
    value = os.environ.get(var)
    if not value:
        raise RuntimeError(f"environment variable {var} is not set")
    return value
