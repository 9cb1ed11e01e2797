"""Resources.

The data paths come from `personalize.settings` (PERSONALIZE_RAW_DIR, PERSONALIZE_DUCKDB_PATH) and are read
when a run executes, not when the code loads: one code location serves whatever environment launches the run,
and dbt, Python assets and observations always agree on where the data lives.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
from dagster import ConfigurableResource
from dagster_dbt import DbtCliResource
from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation
from pydantic import Field

from dagster_app.project import dbt_project
from personalize.dbt import dbt_executable
from personalize.settings import load_settings

_ENVIRON_LOCK = threading.Lock()
# dagster-dbt gives every invocation its own target dir, `<op>-<run id[:7]>-<uuid[:7]>`, and never removes it.
_INVOCATION_DIR = re.compile(r"^\w+-[0-9a-f]{7}-[0-9a-f]{7}$")
KEPT_INVOCATION_DIRS = 20
# The Python score assets sit between dbt models, so a run of the whole graph splits the dbt assets into two
# steps (before and after the scores). A relationships test between the two sides (e.g. customer_score_tiers
# -> persons) has a parent outside each step's selection: `cautious` would run it in neither. `buildable`
# also runs tests whose other parents are upstream of the selection, i.e. already built: it runs there.
DAGSTER_DBT_ENV = {"DBT_INDIRECT_SELECTION": "buildable"}


@contextmanager
def _environ(overrides: Mapping[str, str]) -> Iterator[None]:
    with _ENVIRON_LOCK:
        saved = {name: os.environ.get(name) for name in overrides}
        os.environ.update(overrides)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


class PersonalizeDbtCliResource(DbtCliResource):
    """dagster-dbt's CLI resource, running dbt with the environment of `Settings.dbt_env()`.

    DbtCliResource hands dbt a copy of os.environ, and builds its in-process adapter (the one that counts
    rows) from os.environ as well. Overlaying the settings on os.environ for just the span of `cli()` gives
    both the same absolute paths without leaking anything into the rest of the process.
    """

    def cli(self, args: Sequence[str], **kwargs: Any) -> DbtCliInvocation:
        settings = load_settings()
        settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
        with _environ({**settings.dbt_env(), **DAGSTER_DBT_ENV}):
            return super().cli(args, **kwargs)

    def prune_invocation_dirs(self, keep: int = KEPT_INVOCATION_DIRS) -> list[Path]:
        """Delete all but the newest `keep` per-invocation target dirs (each holds a few MB of artifacts)."""
        # Where dagster-dbt puts them: $DBT_TARGET_PATH (default target), relative to the project.
        target = Path(self.project_dir) / os.environ.get("DBT_TARGET_PATH", "target")
        try:
            found = [path for path in target.iterdir() if path.is_dir() and _INVOCATION_DIR.match(path.name)]
            found.sort(key=lambda path: path.stat().st_mtime, reverse=True)
        except OSError:  # housekeeping only: never let it mask the outcome of the dbt run
            return []
        for path in found[keep:]:
            shutil.rmtree(path, ignore_errors=True)
        return found[keep:]


def release_dbt_duckdb() -> None:
    """Close the warehouse that dagster-dbt's in-process dbt adapter keeps open after counting rows.

    That adapter opens the DuckDB file read-only, and dbt-duckdb keeps the database open for the life of the
    process. Under the in-process executor every later step that opens the file (a Python asset writing
    scores) would then fail with "Can't open a connection to same database file with a different
    configuration than existing connections".
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # dbt-duckdb is not installed, so nothing is held open
        return
    try:
        environment = DuckDBConnectionManager.env()
    except Exception:  # dbt-duckdb raises a bare Exception when no environment was created
        return
    environment.close()
    DuckDBConnectionManager.close_all_connections()


class DuckDBResource(ConfigurableResource):
    """The DuckDB warehouse. DuckDB admits one writing process at a time, hence the in-process executor."""

    database: str | None = Field(
        default=None,
        description="Path of the DuckDB file; unset means $PERSONALIZE_DUCKDB_PATH (data/warehouse.duckdb).",
    )

    def path(self) -> Path:
        return Path(self.database) if self.database else load_settings().duckdb_path

    @contextmanager
    def get_connection(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        path = self.path()
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        connection = duckdb.connect(str(path), read_only=read_only)
        try:
            yield connection
        finally:
            connection.close()


def build_resources() -> dict[str, Any]:
    return {
        # The dbt next to this interpreter: dagster-dbt would otherwise run whichever `dbt` is first on PATH,
        # and `make` does not put .venv/bin there.
        "dbt": PersonalizeDbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable()),
        "duckdb": DuckDBResource(),
    }
