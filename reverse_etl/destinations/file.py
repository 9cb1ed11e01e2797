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
        """Rewrite the audience file and every changes file without the rows of these addresses: the
        changes files are the history a file destination keeps, so an erasure has to reach them too."""
        wanted = {email.strip().lower() for email in emails}
        found: set[str] = set()
        directory = self.config.directory
        files = [self.audience_path, *directory.glob(f"{self.config.name}_changes_*.{self.config.format}")]
        for path in files:
            if path.is_file():
                found |= self._drop_rows(path, wanted)
        return {email: "erased" if email.strip().lower() in found else "not_found" for email in emails}

    def _drop_rows(self, path: Path, wanted: set[str]) -> set[str]:
        """Rewrite `path` (atomically) without the rows whose email is in `wanted`; the emails it dropped."""
        dropped: set[str] = set()
        tmp = path.with_suffix(path.suffix + ".tmp")
        with (
            path.open(newline="", encoding="utf-8") as source,
            tmp.open("w", newline="", encoding="utf-8") as out,
        ):
            if self.config.format == "csv":
                reader = csv.DictReader(source)
                writer = csv.DictWriter(out, fieldnames=reader.fieldnames or [])
                writer.writeheader()
                for row in reader:
                    email = (row.get("email") or "").strip().lower()
                    if email in wanted:
                        dropped.add(email)
                    else:
                        writer.writerow(row)
            else:
                for line in source:
                    email = str(json.loads(line).get("email") or "").strip().lower()
                    if email in wanted:
                        dropped.add(email)
                    else:
                        out.write(line)
        if dropped:
            os.replace(tmp, path)
        else:
            tmp.unlink()
        return dropped

    def close(self) -> None:
        if self._changes is not None:
            self._changes.close()
            self._changes = None
