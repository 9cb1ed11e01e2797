"""Split a generated landing zone into what had arrived by the day before, and the last day's deliveries.

Used to exercise and benchmark incremental loads: build on `early`, then drop the `late` files into the
landing zone as a new delivery.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

# The column that says when a row arrived, for sources that arrive continuously. Other sources are
# copied to `early` whole.
ARRIVAL_COLUMNS = {"shop_orders": "updated_at", "web_events": "received_at", "esp_events": "event_at"}


def split_last_day(full: Path, early: Path, late: Path) -> None:
    """Write `full`'s sources to `early` (rows up to a day before the latest arrival, plus rows whose
    arrival time cannot be parsed) and `late` (the rest), as Parquet, leaving `_truth` out."""
    with duckdb.connect() as connection:
        connection.execute("set TimeZone = 'UTC'")
        for folder in sorted(full.iterdir()):
            if folder.name.startswith("_") or not folder.is_dir():
                continue
            files = sorted(str(path) for path in folder.iterdir() if path.suffix in {".parquet", ".csv"})
            if not files:
                continue
            reader = (
                f"read_parquet({files})"
                if files[0].endswith(".parquet")
                else f"read_csv({files}, all_varchar = true)"
            )
            (early / folder.name).mkdir(parents=True, exist_ok=True)
            column = ARRIVAL_COLUMNS.get(folder.name)
            if column is None:
                connection.execute(f"copy (select * from {reader}) to '{early / folder.name}/part-0.parquet'")
                continue
            arrived = f"try_cast({column} as timestamptz)"
            cutoff = f"(select max({arrived}) - interval 1 day from {reader})"
            connection.execute(
                f"copy (select * from {reader} where not coalesce({arrived} > {cutoff}, false)) "
                f"to '{early / folder.name}/part-0.parquet'"
            )
            (late / folder.name).mkdir(parents=True, exist_ok=True)
            connection.execute(
                f"copy (select * from {reader} where {arrived} > {cutoff}) "
                f"to '{late / folder.name}/part-1.parquet'"
            )


def deliver(late: Path, landing: Path) -> None:
    """Move the files of `late` into the matching folders of `landing`."""
    for folder in sorted(late.iterdir()):
        for path in sorted(folder.iterdir()):
            path.rename(landing / folder.name / path.name)
