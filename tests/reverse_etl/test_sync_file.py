"""The file destination (embedded default): full audience file plus a per-run changes file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pytest

from reverse_etl.destinations import FileConfig, FileDestination
from reverse_etl.engine import sync
from reverse_etl.models import SyncConfig, SyncMode
from reverse_etl.run import main
from tests.reverse_etl.sync_fixtures import people, person, warehouse, write_audience

__all__ = ["warehouse"]
Warehouse = tuple[duckdb.DuckDBPyConnection, Path]


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_csv_first_run_writes_all_second_run_an_empty_changes_file(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    con, _ = warehouse
    out = tmp_path / "exports"
    rows = people(range(25))
    write_audience(con, rows)
    config = SyncConfig(destination="file", mode=SyncMode.MIRROR)

    destination = FileDestination(FileConfig(out, "csv"))
    first = sync(con, config, destination)
    assert (first.inserts, first.confirmed) == (25, 25)
    full = _csv(out / "audience.csv")
    assert [r["email"] for r in full] == [r["email"] for r in rows]
    assert full[3]["rec_2_url"] == rows[3]["rec_2_url"] and "is_subscribable" not in full[3]
    changes = _csv(destination.changes_path)
    assert len(changes) == 25 and {c["op"] for c in changes} == {"upsert"}

    destination = FileDestination(FileConfig(out, "csv"))
    second = sync(con, config, destination)
    assert second.sent == 0
    assert _csv(destination.changes_path) == []
    assert destination.changes_path.read_text().startswith("op,key,email,first_name")
    assert len(_csv(out / "audience.csv")) == 25

    write_audience(con, [person(0, segment="new"), *people(range(1, 24))])  # p24 left, p0 changed
    destination = FileDestination(FileConfig(out, "csv"))
    third = sync(con, config, destination)
    assert (third.changes, third.removals) == (1, 1)
    assert [(c["op"], c["key"]) for c in _csv(destination.changes_path)] == [
        ("upsert", "p00000"),
        ("remove", "p00024"),
    ]
    assert len(_csv(out / "audience.csv")) == 24
    assert len(list(out.glob("audience_changes_*.csv"))) == 3


def test_jsonl_and_the_command_line_runner(
    warehouse: Warehouse, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    con, db = warehouse
    write_audience(con, people(range(3)))
    con.close()
    out = tmp_path / "exports"
    args = ["--db", str(db), "--destination", "file", "--export-dir", str(out), "--format", "jsonl"]
    assert main(["--dry-run", *args]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert (dry["outcome"], dry["inserts"], len(dry["samples"])) == ("dry_run", 3, 3)
    assert not out.exists()  # a dry run writes nothing
    assert main(args) == 0
    run = json.loads(capsys.readouterr().out)
    assert (run["outcome"], run["confirmed"]) == ("success", 3)
    lines = (out / "audience.jsonl").read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["p00000", "p00001", "p00002"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["sent"] == 0
    sizes = sorted(p.stat().st_size for p in out.glob("audience_changes_*.jsonl"))
    assert sizes[0] == 0 and sizes[1] > 0
