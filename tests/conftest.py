"""Fixtures shared by the whole suite."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from personalize.settings import Settings

# Under `pytest -n` (make test) each worker runs dbt concurrently with the other. dbt keeps its saved parse,
# manifest and compiled SQL in the target path, so each worker gets its own, relative to the project as dbt's
# default is; otherwise one worker would read a manifest the other is halfway through writing.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if _WORKER and "DBT_TARGET_PATH" not in os.environ:
    os.environ["DBT_TARGET_PATH"] = f"target/pytest-{_WORKER}"
    os.environ.setdefault("DBT_LOG_PATH", f"logs/pytest-{_WORKER}")


# The files that take minutes, longest first. `make test` hands whole files to two workers in collection
# order (--dist loadfile --no-loadscope-reorder); starting with these, rather than ending with one of them
# while the other worker sits idle, is what keeps the suite's wall time near half its total.
LONGEST_FILES_FIRST = (
    "tests/dagster/test_dagster_materialize.py",
    "tests/dbt/test_incremental_events.py",
    "tests/dagster/test_dagster_ui.py",
    "tests/test_backtest.py",
    "tests/dbt/test_staging_against_truth.py",
    "tests/dbt/test_postgres.py",
    "tests/dbt/test_activation_audience.py",
    "tests/dagster/test_dagster_checks.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {path: position for position, path in enumerate(LONGEST_FILES_FIRST)}
    root = Path(str(config.rootpath))
    items.sort(key=lambda item: rank.get(Path(str(item.path)).relative_to(root).as_posix(), len(rank)))


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    """Write a landing-zone CSV (creating its folder) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


SHOP_ORDERS_HEADER = (
    "order_id", "customer_id", "email", "status", "currency", "subtotal", "discount", "shipping", "tax",
    "total", "created_at", "updated_at",
)  # fmt: skip


@pytest.fixture
def isolated_settings(tmp_path: Path) -> Settings:
    """An empty landing zone, a fresh warehouse file, model registry and export folder, all under tmp_path."""
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    return Settings(
        raw_dir=raw_dir,
        duckdb_path=tmp_path / "warehouse.duckdb",
        model_dir=tmp_path / "models",
        export_dir=tmp_path / "exports",
    )
