"""Fixtures for the Dagster tests: a tiny hand-made landing zone and isolated data paths.

`dagster_app` is first imported with the data paths pointed at a temporary directory, and every run reads its
paths when it executes, so the warehouses and landing zones the tests build all live under pytest's tmp dirs.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import SHOP_ORDERS_HEADER, write_csv

CRM_COLUMNS = [
    "customer_id", "email", "first_name", "last_name", "phone", "birth_date", "gender", "country", "city",
    "postal_code", "created_at", "updated_at",
]  # fmt: skip

TINY_ORDERS = [
    ["o-1", "c-1", "ann@example.com", "paid", "USD", "40.00", "0", "5.00", "3.20", "48.20",
     "2024-03-01T10:00:00Z", "2024-03-01T10:00:00Z"],
    ["o-2", "c-2", "bob@example.com", "shipped", "EUR", "25.00", "5.00", "0", "2.00", "22.00",
     "2024-03-02T09:30:00+02:00", "2024-03-03T08:00:00+02:00"],
    # The same order re-delivered with a later updated_at: raw counts keep both versions.
    ["o-2", "c-2", "bob@example.com", "refunded", "EUR", "25.00", "5.00", "0", "2.00", "22.00",
     "2024-03-02T09:30:00+02:00", "2024-03-10T12:00:00+02:00"],
    ["o-3", "", "guest@example.com", "placed", "USD", "12.50", "0", "0", "1.00", "13.50",
     "2024-03-04T18:45:00-05:00", "2024-03-04T18:45:00-05:00"],
]  # fmt: skip
TINY_CRM = [
    ["c-1", "ann@example.com", "Ann", "Lee", "", "1990-01-01", "f", "US", "Austin", "78701",
     "2023-01-01T00:00:00Z", "2023-01-01T00:00:00Z"],
    ["c-2", "bob@example.com", "Bob", "Ray", "", "1985-05-05", "m", "Germany", "Berlin", "10115",
     "2023-02-01T00:00:00Z", "2023-02-01T00:00:00Z"],
]  # fmt: skip


def write_tiny_landing_zone(raw_dir: Path) -> Path:
    """Orders and CRM customers only; every other source is absent and builds empty."""
    write_csv(raw_dir / "shop_orders" / "orders_2024_03.csv", SHOP_ORDERS_HEADER, TINY_ORDERS)
    write_csv(raw_dir / "crm_customers" / "customers.csv", CRM_COLUMNS, TINY_CRM)
    return raw_dir


@dataclass(frozen=True)
class DataPaths:
    raw_dir: Path
    duckdb_path: Path

    @property
    def model_dir(self) -> Path:
        return self.duckdb_path.parent / "models"

    @property
    def export_dir(self) -> Path:
        return self.duckdb_path.parent / "exports"

    def env(self) -> dict[str, str]:
        # The model registry and the file sync's exports live next to the warehouse, never in the checkout.
        return {
            "PERSONALIZE_RAW_DIR": str(self.raw_dir),
            "PERSONALIZE_DUCKDB_PATH": str(self.duckdb_path),
            "PERSONALIZE_MODEL_DIR": str(self.model_dir),
            "PERSONALIZE_EXPORT_DIR": str(self.export_dir),
        }

    def remove_warehouse(self) -> None:
        """An empty warehouse, and with it no trained models and no exports (the sync state was in it)."""
        for path in (self.duckdb_path, self.duckdb_path.with_name(self.duckdb_path.name + ".wal")):
            path.unlink(missing_ok=True)
        for folder in (self.model_dir, self.export_dir):
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def session_data(tmp_path_factory: pytest.TempPathFactory) -> DataPaths:
    base = tmp_path_factory.mktemp("session_data")
    return DataPaths(raw_dir=write_tiny_landing_zone(base / "raw"), duckdb_path=base / "warehouse.duckdb")


@pytest.fixture(scope="session")
def defs(session_data: DataPaths):
    """The code location as `dagster` loads it, imported under the session's data paths.

    The environment is restored right after the import so that nothing leaks into other test folders; runs
    read their paths when they execute (see `data_paths`).
    """
    with pytest.MonkeyPatch.context() as patch:
        for name, value in session_data.env().items():
            patch.setenv(name, value)
        # Load as a plain process would, even when pytest is started from a `dagster dev` shell.
        patch.delenv("DAGSTER_IS_DEV_CLI", raising=False)
        from dagster_app.definitions import defs

    return defs


@pytest.fixture
def data_paths(tmp_path: Path, session_data: DataPaths, defs, monkeypatch: pytest.MonkeyPatch) -> DataPaths:
    """A fresh tiny landing zone and an empty warehouse for one test, set in the environment runs read.

    The warehouse keeps the session's path, emptied: dbt's partial parsing is keyed on the profile, so the
    manifest parsed when the code loaded stays reusable and each build skips a full re-parse of the project.
    """
    session_data.remove_warehouse()
    paths = DataPaths(raw_dir=write_tiny_landing_zone(tmp_path / "raw"), duckdb_path=session_data.duckdb_path)
    for name, value in paths.env().items():
        monkeypatch.setenv(name, value)
    return paths
