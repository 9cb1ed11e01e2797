"""Marts build: `dbt build --select marts` (every mart and its data tests) at 100k and 1M customers.

Staging, identity and everything else upstream of the marts is built first (models and seeds, no tests) and
not timed, so the figure is the marts alone. Unit tests are excluded: they do not depend on the data size.

Sizes: BENCH_MARTS_SIZES (default 100000,1000000). Target at 1M on 2 cores: <= 3 minutes.
"""

from __future__ import annotations

import os

from bench.bench_staging import _dbt_build, _row
from bench.datasets import BENCH_DATA, ensure_dataset
from personalize.settings import Settings

TITLE = "Marts (dbt build --select marts)"
DEFAULT_SIZES = (100_000, 1_000_000)
TARGET_SECONDS_AT_1M = 180


def _sizes() -> list[int]:
    raw = os.environ.get("BENCH_MARTS_SIZES")
    return [int(s) for s in raw.split(",")] if raw else list(DEFAULT_SIZES)


def run() -> str:
    lines = ["| run | customers | wall time | peak RSS | target met |", "|---|---:|---:|---:|:---:|"]
    for customers in _sizes():
        settings = Settings(
            raw_dir=ensure_dataset(customers), duckdb_path=BENCH_DATA / f"marts-n{customers}.duckdb"
        )
        settings.duckdb_path.unlink(missing_ok=True)
        print(f"building everything upstream of the marts at {customers:,} customers (not timed)", flush=True)
        upstream = [
            "--select",
            "+marts",
            "--exclude",
            "marts",
            "--exclude-resource-type",
            "test",
            "unit_test",
        ]
        _dbt_build(settings, *upstream)
        print(f"timed: dbt build --select marts at {customers:,} customers", flush=True)
        measured = _dbt_build(settings, "--select", "marts", "--exclude-resource-type", "unit_test")
        target = TARGET_SECONDS_AT_1M if customers >= 1_000_000 else None
        lines.append(_row("dbt build --select marts", customers, measured, target))
        settings.duckdb_path.unlink(missing_ok=True)
    return (
        "`dbt build --select marts --exclude-resource-type unit_test`: every model under "
        "`dbt_project/models/marts/` (persons, customer_360, customer_rfm, customer_lifecycle_history, "
        "behavioral_triggers, product_recommendations and any added since) with their data tests, after an "
        "untimed build of everything upstream; DuckDB file warehouse, 2 dbt threads, the generator's "
        "datasets (seed 1). Sizes not listed were not run.\n\n" + "\n".join(lines) + "\n"
    )
