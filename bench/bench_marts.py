"""Marts build: `dbt build --select marts` (every mart and its data tests) at 100k and 1M customers.

Staging, identity and everything else upstream of the marts is built first (models and seeds, no tests) and
not timed, so the figure is the marts alone. Unit tests are excluded: they do not depend on the data size.

Sizes: BENCH_MARTS_SIZES (default 100000,1000000). Target at 1M on 2 cores: <= 3 minutes.

The untimed upstream build takes ~20 minutes at 1M. BENCH_MARTS_UPSTREAM (e.g. `1000000=/path/wh.duckdb`,
comma separated per size) reuses a warehouse already built from that size's dataset instead: it is copied,
its marts schema dropped, and the timed `dbt build --select marts` runs on the copy exactly as it would after
the upstream build.
"""

from __future__ import annotations

import os
import shutil
from functools import partial
from pathlib import Path

import duckdb

from bench.bench_staging import _dbt_build, _repeated, duckdb_memory_limit, table_row
from bench.datasets import BENCH_DATA, ensure_dataset
from personalize.settings import Settings

TITLE = "Marts (dbt build --select marts)"
DEFAULT_SIZES = (100_000, 1_000_000)
TARGET_SECONDS_AT_1M = 180


def _sizes() -> list[int]:
    raw = os.environ.get("BENCH_MARTS_SIZES")
    return [int(s) for s in raw.split(",")] if raw else list(DEFAULT_SIZES)


def _prebuilt_upstreams() -> dict[int, Path]:
    raw = os.environ.get("BENCH_MARTS_UPSTREAM", "")
    prebuilt = {}
    for entry in filter(None, raw.split(",")):
        size, _, path = entry.partition("=")
        if not Path(path).is_file():
            raise SystemExit(f"BENCH_MARTS_UPSTREAM: no warehouse file at {path!r} (entry {entry!r})")
        prebuilt[int(size)] = Path(path)
    return prebuilt


def _copy_upstream(source: Path, warehouse: Path) -> None:
    """Copy a prebuilt warehouse and drop its marts, so the timed build starts as after the upstream build."""
    shutil.copyfile(source, warehouse)
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("drop schema if exists marts cascade")


def run() -> str:
    prebuilt = _prebuilt_upstreams()
    lines = [
        "| run | customers | wall time | CPU time (user + sys) | peak RSS | speed probe before the run "
        "(CPU-s) | target met |",
        "|---|---:|---:|---:|---:|---:|:---:|",
    ]
    for customers in _sizes():
        settings = Settings(
            raw_dir=ensure_dataset(customers), duckdb_path=BENCH_DATA / f"marts-n{customers}.duckdb"
        )
        settings.duckdb_path.unlink(missing_ok=True)
        upstream = [
            "--select",
            "+marts",
            "--exclude",
            "marts",
            "--exclude-resource-type",
            "test",
            "unit_test",
        ]
        if customers in prebuilt:
            print(f"copying the prebuilt upstream warehouse {prebuilt[customers]} (not timed)", flush=True)
            _copy_upstream(prebuilt[customers], settings.duckdb_path)
        else:
            print(f"building the upstream of the marts at {customers:,} customers (untimed)", flush=True)
            _dbt_build(settings, *upstream)
        label = "dbt build --select marts"
        build_marts = partial(
            _dbt_build, settings, "--select", "marts", "--exclude-resource-type", "unit_test"
        )
        runs = _repeated(build_marts, f"{label} at {customers:,} customers", 1)
        target = TARGET_SECONDS_AT_1M if customers >= 1_000_000 else None
        lines.append(table_row(label, customers, runs, target))
        settings.duckdb_path.unlink(missing_ok=True)
    memory_limit = duckdb_memory_limit()
    return (
        "`dbt build --select marts --exclude-resource-type unit_test`: every model under "
        "`dbt_project/models/marts/` (persons, customer_360, customer_rfm, customer_lifecycle_history, "
        "behavioral_triggers, product_recommendations and any added since) with their data tests, after an "
        "untimed build of everything upstream (or a copy of a warehouse built from the same dataset, marts "
        "dropped: BENCH_MARTS_UPSTREAM); DuckDB file warehouse, 2 dbt threads, DuckDB memory_limit "
        f"{memory_limit} (PERSONALIZE_DUCKDB_MEMORY_LIMIT), the generator's datasets (seed 1). Sizes not "
        "listed were not run. The speed probe (bench.measure.machine_speed_probe) is the CPU time of a fixed "
        "DuckDB workload just before the build: more CPU-s means a slower machine at that moment.\n\n"
        + "\n".join(lines)
        + "\n"
    )
