"""Writing raw sources and truth tables: parts, formats, and replacing the previous run's folders.

Everything is written into a staging folder inside ``out`` first; only when the run has finished are the
generated folders swapped in, so a failed run leaves the previous data intact and unrelated files in
``out`` are never touched. Writes run on one background thread (in submission order, so output is
deterministic) while the next chunk is generated.
"""

from __future__ import annotations

import contextlib
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from datagen.schema import RAW_COLUMNS, SOURCES, TRUTH_SCHEMAS, raw_schema

STAGING = ".datagen-staging"
TRUTH_DIR = "_truth"
GENERATED_DIRS: tuple[str, ...] = (*SOURCES, TRUTH_DIR)
PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 1}


def _plain(table: pa.Table) -> pa.Table:
    """Dictionary columns decoded to plain strings (for CSV)."""
    cols = [c.cast(pa.string()) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    return pa.table(cols, names=table.column_names)


def _unique_dictionary(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Re-encode a dictionary column whose dictionary repeats a value: Parquet output is byte-stable only
    for dictionaries without duplicates."""
    chunks = []
    for chunk in col.chunks:
        if len(pc.unique(chunk.dictionary)) != len(chunk.dictionary):
            chunk = chunk.cast(pa.string()).dictionary_encode().cast(chunk.type)
        chunks.append(chunk)
    return pa.chunked_array(chunks, type=col.type)


class _FileSeries:
    """One table written as ``<stem>-00000.<ext>``, ``-00001``..., each of at most ``rows_per_file`` rows."""

    def __init__(
        self, folder: Path, stem: str, schema: pa.Schema, fmt: str, rows_per_file: int | None, raw: bool
    ) -> None:
        self.folder, self.stem, self.schema, self.fmt = folder, stem, schema, fmt
        self.rows_per_file, self.raw = rows_per_file, raw
        self.files: list[Path] = []
        self.rows = 0
        self._rows_in_file = 0
        self._writer: pq.ParquetWriter | pacsv.CSVWriter | None = None

    def _path(self) -> Path:
        ext = "parquet" if self.fmt == "parquet" else "csv"
        if self.rows_per_file is None:
            return self.folder / f"{self.stem}.{ext}"
        return self.folder / f"{self.stem}-{len(self.files):05d}.{ext}"

    def _open(self) -> None:
        path = self._path()
        self.files.append(path)
        if self.fmt == "parquet":
            # Raw files carry no Arrow schema, so dictionary columns read back as plain strings everywhere.
            self._writer = pq.ParquetWriter(path, self.schema, store_schema=not self.raw, **PARQUET_OPTIONS)
        else:
            self._writer = pacsv.CSVWriter(path, _plain(self.schema.empty_table()).schema)
        self._rows_in_file = 0

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            self._open()
        elif (
            self.rows_per_file
            and self._rows_in_file
            and self._rows_in_file + table.num_rows > self.rows_per_file
        ):
            self.close()
            self._open()
        if table.num_rows:
            self._writer.write_table(table if self.fmt == "parquet" else _plain(table))  # type: ignore[union-attr]
        self._rows_in_file += table.num_rows
        self.rows += table.num_rows

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class Output:
    def __init__(self, out: Path, fmt: str, rows_per_file: int) -> None:
        self.out = out
        self.fmt = fmt
        self.rows_per_file = rows_per_file
        self.staging = out / STAGING
        if self.staging.exists():
            shutil.rmtree(self.staging)
        for name in GENERATED_DIRS:
            (self.staging / name).mkdir(parents=True)
        self._series: dict[str, _FileSeries] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="datagen-writer")
        self._pending: list[Future[None]] = []

    def _get(self, name: str, truth: bool) -> _FileSeries:
        key = f"{TRUTH_DIR}/{name}" if truth else name
        if key not in self._series:
            if truth:
                series = _FileSeries(
                    self.staging / TRUTH_DIR, name, TRUTH_SCHEMAS[name], self.fmt, None, raw=False
                )
            else:
                series = _FileSeries(
                    self.staging / name, "part", raw_schema(name), self.fmt, self.rows_per_file, raw=True
                )
            self._series[key] = series
        return self._series[key]

    def _conform(self, name: str, table: pa.Table, truth: bool) -> pa.Table:
        schema = TRUTH_SCHEMAS[name] if truth else raw_schema(name)
        if not truth and tuple(table.column_names) != RAW_COLUMNS[name]:
            raise ValueError(
                f"{name}: columns {table.column_names} differ from the contract {RAW_COLUMNS[name]}"
            )
        table = table.select(schema.names)
        columns = [_unique_dictionary(c) if pa.types.is_dictionary(c.type) else c for c in table.columns]
        return pa.table(columns, names=schema.names).cast(schema)

    def submit(self, name: str, table: pa.Table, truth: bool = False) -> None:
        """Queue ``table`` for writing; tables of one name are written in submission order."""
        series = self._get(name, truth)
        conformed = self._conform(name, table, truth)
        self._pending.append(self._pool.submit(series.write, conformed))

    def drain(self) -> None:
        """Wait for all queued writes (bounds memory to about one chunk in flight)."""
        pending, self._pending = self._pending, []
        for fut in pending:
            fut.result()

    def finish(self) -> tuple[list[Path], dict[str, int]]:
        """Close every file, swap the staged folders into ``out`` and return (files, rows per table)."""
        self.drain()
        for name in SOURCES:
            self._get(name, truth=False)
        for series in self._series.values():
            if not series.files:
                series.write(series.schema.empty_table())
            series.close()
        self._pool.shutdown()
        for name in GENERATED_DIRS:
            target = self.out / name
            if target.is_symlink() or target.is_file():
                target.unlink()
            elif target.exists():
                shutil.rmtree(target)
            (self.staging / name).rename(target)
        shutil.rmtree(self.staging)
        files = sorted(self.out / f.relative_to(self.staging) for s in self._series.values() for f in s.files)
        rows = {key: s.rows for key, s in self._series.items()}
        return files, rows

    def abort(self) -> None:
        """Stop writing and remove the staging folder (the previous run's folders stay as they were)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        for series in self._series.values():
            # Best-effort cleanup while another error propagates.
            with contextlib.suppress(Exception):
                series.close()
        shutil.rmtree(self.staging, ignore_errors=True)
