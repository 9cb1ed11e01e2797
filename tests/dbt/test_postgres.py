"""The same dbt project on PostgreSQL: every model, seed, snapshot, data test and unit test, on a real server.

DuckDB is the embedded default, but the SQL is meant to port (README, Portability). A throwaway PostgreSQL
server (Debian's, which `make test` installs with tests/ensure_debian_packages.sh) is started on 127.0.0.1
in a temporary folder. The raw tables are loaded as an EL tool would: the generator's landing zone, read
through the DuckDB hook's raw views (so the same contract columns and `_source_file`), copied as text into
the `raw` schema. Then one `dbt build` on the `postgres` target of profiles.yml. The unit tests compare each
business rule's output with the same expected rows on both warehouses.
"""

from __future__ import annotations

import csv
import io
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import psycopg2
import pytest

from datagen import GeneratorConfig, generate
from personalize.dbt import DbtError, run_dbt
from personalize.settings import Settings

CUSTOMERS = 200
SEED = 5
AS_OF = date(2025, 12, 31)
DATABASE = "personalize"


def _postgres_bin() -> Path:
    installed = Path("/usr/lib/postgresql").glob("*/bin/initdb")
    candidates = sorted(installed, key=lambda path: int(path.parts[-3]))
    if not candidates:
        raise RuntimeError(
            "no PostgreSQL server is installed: as root, run `tests/ensure_debian_packages.sh "
            "'/usr/lib/postgresql/*/bin/initdb' postgresql` (make test does)"
        )
    return candidates[-1].parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Server:
    port: int
    bin_dir: Path
    data_dir: Path
    user_prefix: tuple[str, ...]

    def ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.user_prefix, str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-w", *args],
            check=True,
            capture_output=True,
        )

    def connect(self, database: str) -> psycopg2.extensions.connection:
        return psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=database)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    bin_dir = _postgres_bin()
    # Not under pytest's temporary folder: as root that is private to root, and the server may not be root.
    root = Path(tempfile.mkdtemp(prefix="personalize-postgres-"))
    data_dir, socket_dir = root / "data", root / "socket"
    data_dir.mkdir()
    socket_dir.mkdir()
    # PostgreSQL refuses to run as root: as root, the server runs as Debian's `postgres` user.
    user_prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        for folder in (root, data_dir, socket_dir):
            os.chown(folder, account.pw_uid, account.pw_gid)
        user_prefix = ("runuser", "-u", "postgres", "--")
    subprocess.run(
        [
            *user_prefix,
            str(bin_dir / "initdb"),
            "-D",
            str(data_dir),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ],  # fmt: skip
        check=True,
        capture_output=True,
    )
    port = _free_port()
    # A throwaway server: durability settings off.
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {socket_dir} -c fsync=off -c full_page_writes=off"
    running = Server(port, bin_dir, data_dir, user_prefix)
    running.ctl("-o", options, "-l", str(root / "server.log"), "start")
    try:
        with closing(running.connect("postgres")) as connection:
            connection.autocommit = True  # CREATE DATABASE runs outside a transaction
            connection.cursor().execute(f"create database {DATABASE}")
        yield running
    finally:
        running.ctl("-m", "fast", "stop")
        shutil.rmtree(root, ignore_errors=True)


def _load_raw_tables(server: Server, duckdb_path: Path) -> dict[str, int]:
    """Copy every raw view of the DuckDB warehouse into PostgreSQL's `raw` schema, all columns text."""
    loaded = {}
    with (
        duckdb.connect(str(duckdb_path), read_only=True) as warehouse,
        closing(server.connect(DATABASE)) as target,
    ):
        target.autocommit = True
        cursor = target.cursor()
        cursor.execute("create schema raw")
        views = warehouse.sql(
            "select table_name from information_schema.tables where table_schema = 'raw' order by table_name"
        ).fetchall()
        for (table,) in views:
            relation = warehouse.sql(f"select * from raw.{table}")
            columns = relation.columns
            cursor.execute(f"create table raw.{table} ({', '.join(f'{name} text' for name in columns)})")
            rows = relation.fetchall()
            buffer = io.StringIO()
            # csv writes None and '' alike, as an empty field, which COPY reads as null: as DuckDB's CSV
            # reader does with an empty field.
            csv.writer(buffer).writerows(rows)
            buffer.seek(0)
            cursor.copy_expert(f"copy raw.{table} from stdin with (format csv)", buffer)
            loaded[table] = len(rows)
    return loaded


@dataclass(frozen=True)
class Build:
    raw_rows: dict[str, int]
    output: str
    error: DbtError | None


@pytest.fixture(scope="module")
def build(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Build:
    root = tmp_path_factory.mktemp("postgres_build")
    raw_dir = root / "raw"
    generate(GeneratorConfig(customers=CUSTOMERS, seed=SEED, out=raw_dir, as_of=AS_OF, format="csv"))
    settings = Settings(raw_dir=raw_dir, duckdb_path=root / "landing.duckdb")
    # The DuckDB hook's raw views are what an EL tool would load: the contract columns and _source_file.
    run_dbt(["run-operation", "register_raw_sources"], settings, capture=True)
    raw_rows = _load_raw_tables(server, settings.duckdb_path)
    environment = {
        "PERSONALIZE_DBT_TARGET": "postgres",
        "PERSONALIZE_PG_PORT": str(server.port),
        "PERSONALIZE_PG_USER": "postgres",
        "PERSONALIZE_PG_DATABASE": DATABASE,
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        try:
            # Its own target folder: another profile makes dbt parse again, and the worker's DuckDB tests
            # would then parse once more too.
            output = run_dbt(["build", "--target-path", str(root / "target")], settings, capture=True)
            return Build(raw_rows, output, None)
        except DbtError as error:
            return Build(raw_rows, error.output, error)


def test_every_raw_source_is_loaded(build: Build) -> None:
    assert set(build.raw_rows) == {
        "consent_events", "crm_customers", "esp_events", "privacy_requests", "products", "shop_order_lines",
        "shop_orders", "web_events",
    }  # fmt: skip
    assert build.raw_rows["shop_orders"] > CUSTOMERS


def test_the_whole_project_builds_and_passes_its_tests_on_postgres(build: Build) -> None:
    tail = "\n".join(build.output.rstrip().splitlines()[-40:])
    assert build.error is None, tail
    summary = [line for line in build.output.splitlines() if "Done. PASS=" in line]
    assert summary and "ERROR=0" in summary[-1] and "WARN=0" in summary[-1], tail
    assert "unit test" in build.output  # the business rules' unit tests ran too


def test_marts_are_filled_on_postgres(build: Build, server: Server) -> None:
    assert build.error is None
    with closing(server.connect(DATABASE)) as connection:
        cursor = connection.cursor()
        counts = {}
        for relation in ("marts.customer_360", "marts.customer_rfm", "activation.esp_audience"):
            cursor.execute(f"select count(*) from {relation}")
            counts[relation] = cursor.fetchone()[0]
    assert counts["marts.customer_rfm"] > CUSTOMERS / 4, counts
    assert counts["marts.customer_360"] >= counts["marts.customer_rfm"], counts
    assert 0 < counts["activation.esp_audience"] < counts["marts.customer_360"], counts
