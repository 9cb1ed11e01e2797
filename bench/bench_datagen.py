"""Generator throughput: `personalize generate` at 100k and 1M customers.

Sizes can be overridden with BENCH_DATAGEN_SIZES=100000,1000000. Target: 1M customers in at most
3 minutes and 6 GB peak RSS on 2 cores. The datasets stay in the benchmark cache for the other benchmarks.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb

from bench.datasets import HORIZON_DAYS, SEED, dataset_dir, generate_command
from bench.measure import human_bytes, measure_command

TITLE = "Synthetic data generator"
DEFAULT_SIZES = (100_000, 1_000_000)
SOURCES = (
    "crm_customers",
    "shop_orders",
    "shop_order_lines",
    "products",
    "web_events",
    "esp_events",
    "consent_events",
    "privacy_requests",
)


def _sizes() -> list[int]:
    raw = os.environ.get("BENCH_DATAGEN_SIZES")
    return [int(s) for s in raw.split(",")] if raw else list(DEFAULT_SIZES)


def _rows(folder: Path) -> int:
    files = sorted(str(path) for path in folder.glob("*.parquet"))
    if not files:
        return 0
    return duckdb.sql(f"select count(*) from read_parquet({files})").fetchall()[0][0]


def run() -> str:
    sizes = _sizes()
    rows_table: dict[str, dict[int, int]] = {source: {} for source in SOURCES}
    summary_lines = [
        "| customers | wall time | peak RSS | rows (all sources) | bytes written "
        "| 1M target met (<= 180 s, <= 6 GB) |",
        "|---:|---:|---:|---:|---:|:---:|",
    ]
    for customers in sizes:
        out = dataset_dir(customers)
        shutil.rmtree(out, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        print(f"generating {customers:,} customers into {out}", flush=True)
        measured = measure_command(generate_command(customers, out))
        for source in SOURCES:
            rows_table[source][customers] = _rows(out / source)
        total_rows = sum(rows_table[source][customers] for source in SOURCES)
        size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
        met = measured.wall_seconds <= 180 and measured.peak_rss_bytes <= 6e9
        verdict = ("yes" if met else "NO") if customers >= 1_000_000 else "n/a"
        summary_lines.append(
            f"| {customers:,} | {measured.wall_seconds:,.1f} s | {human_bytes(measured.peak_rss_bytes)} "
            f"| {total_rows:,} | {human_bytes(size)} | {verdict} |"
        )
    rows_lines = [
        "| source | " + " | ".join(f"{n:,} customers" for n in sizes) + " |",
        "|---|" + "---:|" * len(sizes),
    ]
    for source in SOURCES:
        rows_lines.append(f"| {source} | " + " | ".join(f"{rows_table[source][n]:,}" for n in sizes) + " |")
    return (
        f"`personalize generate --customers N --seed {SEED} --out DIR --horizon-days {HORIZON_DAYS}` "
        "(Parquet), "
        "measured as a child process (peak RSS from wait4). Bytes include the ground truth.\n\n"
        + "\n".join(summary_lines)
        + "\n\nRows per raw source:\n\n"
        + "\n".join(rows_lines)
        + "\n"
    )
