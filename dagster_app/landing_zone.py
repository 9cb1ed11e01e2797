"""What is in a landing-zone folder, summarized so that a change in the raw files is detectable.

Files are selected by the same rule as dbt's `register_raw_sources` hook: `<folder>/*` ending in .csv, .csv.gz
or .parquet (any case), hidden files skipped, no recursion. Plain functions so that observations and sensors
share them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet")


@dataclass(frozen=True)
class LandingFile:
    name: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class LandingSnapshot:
    folder: Path
    files: tuple[LandingFile, ...]

    @property
    def file_count(self) -> int:
        return len(self.files)

    @property
    def total_bytes(self) -> int:
        return sum(file.size for file in self.files)

    @property
    def last_modified(self) -> datetime | None:
        if not self.files:
            return None
        return datetime.fromtimestamp(max(file.mtime_ns for file in self.files) / 1e9, tz=UTC)

    @property
    def data_version(self) -> str:
        """Changes whenever a file is added, removed, renamed, resized or rewritten; stable otherwise."""
        digest = hashlib.sha256()
        for file in self.files:
            digest.update(f"{file.name}\0{file.size}\0{file.mtime_ns}\n".encode())
        return digest.hexdigest()[:24]


def is_landing_file(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.name.lower().endswith(DATA_SUFFIXES)


def snapshot_folder(folder: Path) -> LandingSnapshot:
    """The data files directly in `folder`; a missing folder is an empty one (sources may be absent)."""
    paths = sorted(path for path in folder.iterdir() if is_landing_file(path)) if folder.is_dir() else []
    files = []
    for path in paths:
        stat = path.stat()
        files.append(LandingFile(name=path.name, size=stat.st_size, mtime_ns=stat.st_mtime_ns))
    return LandingSnapshot(folder=folder, files=tuple(files))
