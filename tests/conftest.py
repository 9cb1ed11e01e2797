"""Fixtures shared by the whole suite."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from personalize.settings import Settings


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
