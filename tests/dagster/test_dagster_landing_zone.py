import os
from pathlib import Path

from dagster_app.landing_zone import snapshot_folder


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_missing_folder_is_an_empty_source(tmp_path: Path) -> None:
    snapshot = snapshot_folder(tmp_path / "absent")
    assert (snapshot.file_count, snapshot.total_bytes, snapshot.last_modified) == (0, 0, None)
    assert snapshot.data_version == snapshot_folder(tmp_path / "also_absent").data_version


def test_counts_only_the_files_dbt_reads(tmp_path: Path) -> None:
    folder = tmp_path / "shop_orders"
    _write(folder / "a.csv", "x\n1\n")
    _write(folder / "b.CSV.GZ", "zz")
    _write(folder / "c.parquet", "pq")
    # Not read by the dbt hook either: hidden files, other extensions, subfolders.
    _write(folder / ".d.csv", "hidden")
    _write(folder / "notes.txt", "no")
    _write(folder / "nested" / "e.csv", "no")
    snapshot = snapshot_folder(folder)
    assert [file.name for file in snapshot.files] == ["a.csv", "b.CSV.GZ", "c.parquet"]
    assert snapshot.total_bytes == 4 + 2 + 2
    assert snapshot.last_modified is not None


def test_data_version_tracks_added_rewritten_and_removed_files(tmp_path: Path) -> None:
    folder = tmp_path / "web_events"
    first = _write(folder / "day1.csv", "event_id\n1\n")
    versions = [snapshot_folder(folder).data_version]
    assert snapshot_folder(folder).data_version == versions[0], "unchanged files, same version"

    second = _write(folder / "day2.csv", "event_id\n2\n")
    versions.append(snapshot_folder(folder).data_version)

    _write(second, "event_id\n2\n3\n")
    versions.append(snapshot_folder(folder).data_version)

    # Same size, new mtime: a re-delivered file with identical length still counts as new data.
    stat = first.stat()
    os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    versions.append(snapshot_folder(folder).data_version)

    second.unlink()
    versions.append(snapshot_folder(folder).data_version)

    _write(folder / "ignored.txt", "x")
    assert snapshot_folder(folder).data_version == versions[-1], "non-data files do not change the version"
    assert len(set(versions)) == len(versions), versions
