"""Locations shared by dbt, the Python libraries and Dagster.

Two environment variables decide where data lives; profiles.yml and the dbt hook read the same two, so a
value set once applies everywhere. The model registry and the file exports belong to one warehouse, so by
default they sit beside it (`models/` and `exports/` in the warehouse file's folder).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

RAW_DIR_ENV = "PERSONALIZE_RAW_DIR"
DUCKDB_PATH_ENV = "PERSONALIZE_DUCKDB_PATH"
MODEL_DIR_ENV = "PERSONALIZE_MODEL_DIR"
DEFAULT_RAW_DIR = "data/raw"
DEFAULT_DUCKDB_PATH = "data/warehouse.duckdb"
EXPORT_DIR_ENV = "PERSONALIZE_EXPORT_DIR"
# Folder names beside the warehouse file, used when PERSONALIZE_MODEL_DIR / PERSONALIZE_EXPORT_DIR are unset.
MODEL_DIR_NAME = "models"
EXPORT_DIR_NAME = "exports"

# The dbt project (dbt_project.yml, profiles.yml) sits at the repository root.
PROJECT_DIR = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    raw_dir: Path
    duckdb_path: Path
    # The model registry (ml.registry) is Python-only, so dbt never sees it. None (the default) puts it
    # beside the warehouse: a registry shared by two warehouses would let one's promoted model score the
    # other's people whenever a candidate trained there is not promoted.
    model_dir: Path = None  # type: ignore[assignment]
    # Where the file destination writes its exports (personalize sync --destination file); None: beside the
    # warehouse, whose sync state records what those files hold.
    export_dir: Path = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.model_dir is None:
            object.__setattr__(self, "model_dir", self.duckdb_path.parent / MODEL_DIR_NAME)
        if self.export_dir is None:
            object.__setattr__(self, "export_dir", self.duckdb_path.parent / EXPORT_DIR_NAME)

    def dbt_env(self) -> dict[str, str]:
        """Environment for a dbt subprocess: absolute paths, so the working directory does not matter."""
        return {
            # dbt runs in the warehouse's folder (personalize.dbt.run_dbt): a relative path would be read from
            # there, not from where the command was given.
            RAW_DIR_ENV: str(self.raw_dir.absolute()),
            DUCKDB_PATH_ENV: str(self.duckdb_path.absolute()),
            "DBT_PROFILES_DIR": str(PROJECT_DIR),
            # When one asset or model is selected, run only the tests all of whose parents are selected:
            # dbt's default would also run, say, a relationships test from a staging model to a seed when
            # only the seed is built, and fail on a fresh warehouse.
            "DBT_INDIRECT_SELECTION": "cautious",
        }


def _resolve(value: str) -> Path:
    path = Path(value).expanduser()
    # Relative paths are relative to the project root, as they are for `make` and dbt run from there.
    return path if path.is_absolute() else (PROJECT_DIR / path)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    model_dir, export_dir = env.get(MODEL_DIR_ENV), env.get(EXPORT_DIR_ENV)
    return Settings(
        raw_dir=_resolve(env.get(RAW_DIR_ENV) or DEFAULT_RAW_DIR),
        duckdb_path=_resolve(env.get(DUCKDB_PATH_ENV) or DEFAULT_DUCKDB_PATH),
        model_dir=_resolve(model_dir) if model_dir else None,  # type: ignore[arg-type]
        export_dir=_resolve(export_dir) if export_dir else None,  # type: ignore[arg-type]
    )
