"""Locations shared by dbt, the Python libraries and Dagster.

Two environment variables decide where data lives; profiles.yml and the dbt hook read the same two, so a
value set once applies everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

RAW_DIR_ENV = "PERSONALIZE_RAW_DIR"
DUCKDB_PATH_ENV = "PERSONALIZE_DUCKDB_PATH"
MODEL_DIR_ENV = "PERSONALIZE_MODEL_DIR"
DEFAULT_RAW_DIR = "data/raw"
DEFAULT_DUCKDB_PATH = "data/warehouse.duckdb"
DEFAULT_MODEL_DIR = "data/models"
EXPORT_DIR_ENV = "PERSONALIZE_EXPORT_DIR"
DEFAULT_EXPORT_DIR = "data/exports"

# The dbt project (dbt_project.yml, profiles.yml) sits at the repository root.
PROJECT_DIR = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    raw_dir: Path
    duckdb_path: Path
    # The model registry (ml.registry) is Python-only, so dbt never sees it. Defaulted so callers that
    # only care about dbt can keep building Settings from the two data paths.
    model_dir: Path = field(default_factory=lambda: _resolve(DEFAULT_MODEL_DIR))
    # Where the file destination writes its exports (personalize sync --destination file).
    export_dir: Path = field(default_factory=lambda: _resolve(DEFAULT_EXPORT_DIR))

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
    return Settings(
        raw_dir=_resolve(env.get(RAW_DIR_ENV) or DEFAULT_RAW_DIR),
        duckdb_path=_resolve(env.get(DUCKDB_PATH_ENV) or DEFAULT_DUCKDB_PATH),
        model_dir=_resolve(env.get(MODEL_DIR_ENV) or DEFAULT_MODEL_DIR),
        export_dir=_resolve(env.get(EXPORT_DIR_ENV) or DEFAULT_EXPORT_DIR),
    )
