"""Cut a CSV landing zone back to what existed at the end of a date, for the as-of tests.

A row is dropped when any of its source's event-time columns lies after the end of the date (UTC): order
versions and CRM updates written later, web/ESP/consent events that happened later, privacy requests
made later. Order lines go with their order (lines of an order that did not exist yet are dropped; lines
whose order never existed at all are kept, they are orphans either way). The product catalogue is kept
whole: it is reference data, not a fact about a person. Rows whose timestamp cannot be parsed are kept:
they are quarantined in every build. Web events are cut by event_at, the time the marts count them by;
their collector receipt time is not a business time.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

EVENT_TIME_COLUMNS: dict[str, tuple[str, ...]] = {
    "shop_orders": ("created_at", "updated_at"),
    "crm_customers": ("created_at", "updated_at"),
    "web_events": ("event_at",),
    "esp_events": ("event_at",),
    "consent_events": ("event_at",),
    "privacy_requests": ("requested_at",),
}
KEPT_WHOLE = ("products",)


def parse_instant(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    # A timestamp without an offset is UTC, as staging's to_utc_timestamp reads it.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _is_after(row: dict[str, str], columns: tuple[str, ...], end: datetime) -> bool:
    for column in columns:
        instant = parse_instant(row.get(column) or "")
        if instant is not None and instant >= end:
            return True
    return False


def _csv_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.glob("*.csv") if not path.name.startswith("."))


def _filter_csv(source: Path, target: Path, keep: Callable[[dict[str, str]], bool]) -> set[str]:
    """Copy the rows of `source` for which keep(row) is true; return the order_ids of kept rows."""
    kept_ids: set[str] = set()
    with source.open(newline="") as reading, target.open("w", newline="") as writing:
        reader = csv.DictReader(reading)
        assert reader.fieldnames is not None, f"{source} has no header"
        writer = csv.DictWriter(writing, fieldnames=reader.fieldnames)
        writer.writeheader()
        for row in reader:
            if keep(row):
                writer.writerow(row)
                kept_ids.add(row.get("order_id") or "")
    return kept_ids


def truncate_landing_zone(raw_dir: Path, out_dir: Path, as_of: date) -> None:
    """Write to out_dir the CSV landing zone raw_dir as it stood at the end of `as_of` (UTC)."""
    end = datetime.combine(as_of + timedelta(days=1), time(0), tzinfo=UTC)
    out_dir.mkdir(parents=True)
    all_order_ids: set[str] = set()
    kept_order_ids: set[str] = set()
    for source, columns in EVENT_TIME_COLUMNS.items():
        folder = raw_dir / source
        if not folder.is_dir():
            continue
        (out_dir / source).mkdir()
        for path in _csv_files(folder):
            kept = _filter_csv(
                path, out_dir / source / path.name, lambda row, c=columns: not _is_after(row, c, end)
            )
            if source == "shop_orders":
                kept_order_ids |= kept
                with path.open(newline="") as handle:
                    all_order_ids |= {row["order_id"] or "" for row in csv.DictReader(handle)}
    lines = raw_dir / "shop_order_lines"
    if lines.is_dir():
        (out_dir / "shop_order_lines").mkdir()
        for path in _csv_files(lines):
            _filter_csv(
                path,
                out_dir / "shop_order_lines" / path.name,
                lambda row: (
                    (row["order_id"] or "") in kept_order_ids or (row["order_id"] or "") not in all_order_ids
                ),
            )
    for source in KEPT_WHOLE:
        if (raw_dir / source).is_dir():
            shutil.copytree(raw_dir / source, out_dir / source)
