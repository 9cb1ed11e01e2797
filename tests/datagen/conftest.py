"""Session-scoped datasets for the generator tests (small N, generated once into a temp folder)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

import datagen.generator as generator_module
from datagen import SOURCES, DefectRates, GenerationSummary, GeneratorConfig, generate

TRUTH = ("identities", "persons", "defects", "future_orders", "future_order_details", "fx_rates")


@dataclass
class Dataset:
    config: GeneratorConfig
    summary: GenerationSummary
    con: duckdb.DuckDBPyConnection

    @property
    def out(self) -> Path:
        return self.config.out

    @property
    def cutoff(self) -> datetime:
        return datetime.combine(self.config.as_of + timedelta(days=1), datetime.min.time(), tzinfo=UTC)

    def sql(self, query: str, params: list[object] | None = None) -> list[tuple]:
        return self.con.execute(query, params or []).fetchall()

    def one(self, query: str, params: list[object] | None = None) -> object:
        return self.con.execute(query, params or []).fetchone()[0]


def _open(config: GeneratorConfig, summary: GenerationSummary) -> Dataset:
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    con.execute("set threads = 2")
    ext = config.format
    for source in SOURCES:
        path = f"{config.out}/{source}/*.{ext}"
        reader = (
            f"read_parquet('{path}')"
            if ext == "parquet"
            else (f"read_csv('{path}', all_varchar = true, header = true)")
        )
        con.execute(f"create view {source} as select * from {reader}")
    for name in TRUTH:
        path = config.out / "_truth" / f"{name}.{ext}"
        if path.exists():
            reader = f"read_parquet('{path}')" if ext == "parquet" else f"read_csv('{path}', header = true)"
            con.execute(f"create view truth_{name} as select * from {reader}")
    return Dataset(config, summary, con)


def make(root: Path, name: str, chunk: int | None = None, **kwargs: object) -> Dataset:
    config = GeneratorConfig(out=root / name, **kwargs)  # type: ignore[arg-type]
    with pytest.MonkeyPatch.context() as mp:
        if chunk is not None:
            # Small chunks exercise the chunk boundaries that only large runs hit otherwise.
            mp.setattr(generator_module, "CHUNK_PERSONS", chunk)
        summary = generate(config)
    return _open(config, summary)


@pytest.fixture(scope="session")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("datagen")


@pytest.fixture(scope="session")
def make_dataset(root: Path) -> Callable[..., Dataset]:
    """Generate a further dataset under the session folder: ``make_dataset(name, **config)``."""
    return lambda name, chunk=None, **kwargs: make(root, name, chunk, **kwargs)


@pytest.fixture(scope="session")
def main(root: Path) -> Iterator[Dataset]:
    """Default defect rates, a horizon, several chunks and file parts."""
    ds = make(root, "main", chunk=1_500, customers=4_000, seed=11, horizon_days=90, rows_per_file=40_000)
    yield ds
    ds.con.close()


@pytest.fixture(scope="session")
def clean(root: Path) -> Iterator[Dataset]:
    """All defects off: the behavioural model without noise."""
    ds = make(root, "clean", customers=3_000, seed=5, defects=DefectRates.none(), as_of=date(2025, 6, 30))
    yield ds
    ds.con.close()


@pytest.fixture(scope="session")
def small(root: Path) -> Iterator[Dataset]:
    ds = make(root, "small", customers=1_000, seed=11, horizon_days=90)
    yield ds
    ds.con.close()
