"""File destination (the embedded default): the full current audience plus a per-run changes file."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from reverse_etl.destinations.base import DeliveryContext, Destination
from reverse_etl.models import BatchResult, Record, SnapshotRow


@dataclass(frozen=True)
class FileConfig:
    directory: Path = Path("data/exports")
    format: str = "csv"  # "csv" or "jsonl"
    name: str = "audience"

    def __post_init__(self) -> None:
        if self.format not in ("csv", "jsonl"):
            raise ValueError(f"file format must be csv or jsonl, not {self.format!r}")


class FileDestination(Destination):
    """Writes `<name>.<ext>` (everyone, replaced atomically) and `<name>_changes_<run_id>.<ext>`."""

    name = "file"
    needs_audience = True  # it rewrites the whole audience file every run

    def __init__(self, config: FileConfig | None = None) -> None:
        self.config = config or FileConfig()
        self._changes: TextIO | None = None
        self._writer: Any = None
        self._columns: list[str] = []
        self.changes_path: Path | None = None
        self.audience_path = self.config.directory / f"{self.config.name}.{self.config.format}"

    def payload(self, record: Record) -> dict[str, Any]:
        return {"key": record.key, "email": record.email, **record.fields}

    def _write_rows(self, handle: TextIO, rows: list[dict[str, Any]], columns: list[str]) -> None:
        if self.config.format == "csv":
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        else:
            for row in rows:
                handle.write(json.dumps(row, sort_keys=False) + "\n")

    def open(self, run_id: str, audience: Sequence[Record]) -> None:
        directory = self.config.directory
        directory.mkdir(parents=True, exist_ok=True)
        fields = list(audience[0].fields) if audience else []
        self._columns = ["op", "key", "email", *fields]
        tmp = self.audience_path.with_suffix(self.audience_path.suffix + ".tmp")
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            self._write_rows(handle, [self.payload(r) for r in audience], ["key", "email", *fields])
        os.replace(tmp, self.audience_path)
        self.changes_path = directory / f"{self.config.name}_changes_{run_id}.{self.config.format}"
        self._changes = self.changes_path.open("w", newline="", encoding="utf-8")
        if self.config.format == "csv":
            self._writer = csv.DictWriter(self._changes, fieldnames=self._columns, extrasaction="ignore")
            self._writer.writeheader()

    def _append(self, rows: list[dict[str, Any]]) -> None:
        assert self._changes is not None, "open() first"
        if self.config.format == "csv":
            self._writer.writerows(rows)
        else:
            for row in rows:
                self._changes.write(json.dumps(row) + "\n")
        self._changes.flush()
        os.fsync(self._changes.fileno())

    def upsert(self, records: Sequence[Record], ctx: DeliveryContext) -> Iterator[BatchResult]:
        for start in range(0, len(records), 10_000):
            batch = list(records[start : start + 10_000])
            self._append([{"op": "upsert", **self.payload(r)} for r in batch])
            yield BatchResult(confirmed=batch)

    def remove(self, rows: Sequence[SnapshotRow], ctx: DeliveryContext) -> Iterator[BatchResult]:
        if rows:
            self._append([{"op": "remove", "key": r.key, "email": r.email} for r in rows])
            yield BatchResult(removed=[r.key for r in rows])

    def erase(self, emails: Sequence[str]) -> dict[str, str]:
        # The next run rewrites the audience file without them (erased people never appear in it).
        return dict.fromkeys(emails, "state_only")

    def close(self) -> None:
        if self._changes is not None:
            self._changes.close()
            self._changes = None
