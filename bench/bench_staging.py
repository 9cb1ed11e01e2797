"""Staging, quality and identity: a full `dbt build` at 100k and 1M customers, and an incremental build at
1M after one new day of files lands.

Both timed runs build the layers the targets are about: the models under staging/, quality/ and
intermediate/ (source cleaning, quarantine, reconciliation, identity graph, web sessions), the seeds they
read, and their data tests. Unit tests are excluded: they do not depend on the data size. Marts and
everything downstream are not built. The incremental run builds, of those, only what depends on the
sources that received files, as the orchestrator does (see incremental_selection).

Sizes: BENCH_STAGING_SIZES (default 100000,1000000); the incremental run uses the largest.
Targets at 1M on 2 cores: full build <= 3 minutes, incremental <= 30 seconds.

The runs with a target are repeated (BENCH_STAGING_REPEATS, default 3) and judged on the median: the same
build on the same data varies by a fifth between runs on a shared virtual machine (the CPU time it
needs moves as much as its wall time, so the machine, not the work, is what changes). Every run's time is
reported, and how many of them met the target, with the speed probe taken just before it
(bench.measure.machine_speed_probe: how fast the machine was at the time).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bench.datasets import BENCH_DATA, ensure_dataset
from bench.measure import Measurement, human_bytes, machine_speed_probe, measure_command
from datagen.arrivals import deliver, split_last_day
from personalize.settings import PROJECT_DIR, Settings

TITLE = "Staging, quality and identity (dbt build)"
DEFAULT_SIZES = (100_000, 1_000_000)


def _sizes() -> list[int]:
    raw = os.environ.get("BENCH_STAGING_SIZES")
    return [int(s) for s in raw.split(",")] if raw else list(DEFAULT_SIZES)


def _repeats() -> int:
    return int(os.environ.get("BENCH_STAGING_REPEATS", "3"))


def _dbt(settings: Settings, command: str, *extra: str) -> Measurement:
    dbt = str(Path(sys.executable).with_name("dbt"))
    env = {**os.environ, **settings.dbt_env(), "DBT_TARGET_PATH": str(BENCH_DATA / "dbt_target")}
    project = ["--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)]
    arguments = [dbt, command, "--quiet", *project]
    return measure_command([*arguments, *extra], env=env, cwd=PROJECT_DIR)


def _dbt_build(settings: Settings, *extra: str) -> Measurement:
    return _dbt(settings, "build", *extra)


# Selection of the timed runs: staging, quality and identity (plus int_web_sessions) with the seeds they
# read and their data tests. Tests that also reference a mart are left out by cautious indirect selection.
STAGING_SELECTION = (
    "--select",
    "+staging",
    "+quality",
    "+intermediate",
    "--exclude-resource-type",
    "unit_test",
)
# The untimed build of the landing zone up to the day before: the same models and seeds, no tests.
STAGING_MODELS_ONLY = (*STAGING_SELECTION[:-2], "--exclude-resource-type", "test", "unit_test")
# The dbt source fed by each landing folder that receives files every day (datagen.arrivals).
SOURCE_OF_FOLDER = {"shop_orders": "shop.orders", "web_events": "web.events", "esp_events": "esp.events"}


def incremental_selection(landed_folders: list[str]) -> tuple[str, ...]:
    """The incremental run: the models of STAGING_SELECTION downstream of the sources that received files
    (dbt `source:<source>+`, intersected with each layer), and their data tests.

    That is what Dagster runs when files land: raw_files_sensor requests the assets downstream of the raw
    assets whose data version changed. Nothing fed only by sources without new files (products, privacy
    requests, the seeds) is rebuilt. Tests are selected `buildable`: those of the rebuilt models, including
    tests that also read an unchanged upstream model (stg_web__events' relationship to stg_shop__products),
    where the default `cautious` would drop them.
    """
    layers = STAGING_SELECTION[1:4]
    selectors = [
        f"source:{SOURCE_OF_FOLDER[folder]}+,{layer}" for folder in sorted(landed_folders) for layer in layers
    ]
    return ("--select", *selectors, "--indirect-selection", "buildable", *STAGING_SELECTION[-2:])


def _idle_threads(results: list[dict], threads: int) -> str:
    """How busy dbt's threads were between the first node's start and the last node's end (run_results
    timing): thread-seconds spent on no node are time a node waited for its parents, or the tail of the
    run when one long node runs alone. Read from the results after the run, so nothing timed changes."""
    spans = [
        (datetime.fromisoformat(step["started_at"]), datetime.fromisoformat(step["completed_at"]))
        for result in results
        for step in result["timing"]
        if step.get("started_at") and step.get("completed_at")
    ]
    if not spans:
        return "no node timings"
    window = (max(end for _, end in spans) - min(start for start, _ in spans)).total_seconds()
    busy = sum((end - start).total_seconds() for start, end in spans)
    idle = max(threads * window - busy, 0.0)
    return f"nodes ran for {window:.1f} s on {threads} threads, {idle:.1f} thread-seconds idle"


def _slowest_nodes(label: str, count: int = 12) -> str:
    """The dearest dbt nodes of the run just measured (run_results.json): where the time went, the total
    execution time of models and of data tests (summed over the threads, so more than the wall time), and
    how long the threads were idle (_idle_threads)."""
    results = json.loads((BENCH_DATA / "dbt_target" / "run_results.json").read_text())["results"]
    timed = sorted(((r["execution_time"], r["unique_id"]) for r in results), reverse=True)
    totals = {kind: sum(t for t, uid in timed if uid.startswith(kind + ".")) for kind in ("model", "test")}
    nodes = ", ".join(f"{uid.split('.')[-1][:60]} {seconds:.1f} s" for seconds, uid in timed[:count])
    threads = int(os.environ.get("PERSONALIZE_DBT_THREADS", "2"))
    return (
        f"- {label}: models {totals['model']:.1f} s, data tests {totals['test']:.1f} s "
        f"over {len(timed)} nodes ({_idle_threads(results, threads)}); slowest: {nodes}"
    )


def duckdb_memory_limit() -> str:
    """The memory_limit profiles.yml gives DuckDB, as the benchmark prose states it."""
    return os.environ.get("PERSONALIZE_DUCKDB_MEMORY_LIMIT", "80%")


@dataclass(frozen=True)
class TimedRun:
    measured: Measurement
    nodes: str  # _slowest_nodes of this run
    probe_seconds: float  # machine_speed_probe just before the run: how fast the machine was


def _repeated(run_once: Callable[[], Measurement], label: str, times: int) -> list[TimedRun]:
    """`run_once` `times` times, each after the machine's speed probe and followed by reading its dbt run
    results (_slowest_nodes)."""
    runs = []
    for attempt in range(1, times + 1):
        probe = machine_speed_probe()
        print(f"{label}: run {attempt} of {times} (speed probe {probe:.2f} CPU-s)", flush=True)
        measured = run_once()
        runs.append(TimedRun(measured, _slowest_nodes(label), probe))
        print(f"{label}: run {attempt}: {measured.wall_seconds:.1f} s", flush=True)
    return runs


def median_run(runs: list[TimedRun]) -> TimedRun:
    """The run of median wall time (the lower middle one for an even count), whose figures are reported."""
    ordered = sorted(runs, key=lambda run: run.measured.wall_seconds)
    return ordered[(len(ordered) - 1) // 2]


def table_row(label: str, customers: int, runs: list[TimedRun], target: float | None) -> str:
    """One table row: the median run's wall time and peak RSS, the median CPU time, the speed probe before
    each run, and with more than one run every run's wall time and how many of them met the target. The
    verdict is the median's."""
    median = median_run(runs).measured
    wall = f"{median.wall_seconds:,.1f} s"
    verdict = "n/a" if target is None else ("yes" if median.wall_seconds <= target else "NO")
    if len(runs) > 1:
        walls = ", ".join(f"{run.measured.wall_seconds:,.1f}" for run in runs)
        wall += f" (median of {len(runs)}: {walls} s)"
        cpu = statistics.median(run.measured.cpu_seconds for run in runs)
        if target is not None:
            within = sum(run.measured.wall_seconds <= target for run in runs)
            verdict += f" ({within} of {len(runs)} runs)"
    else:
        cpu = median.cpu_seconds
    memory = human_bytes(median.peak_rss_bytes)
    probes = ", ".join(f"{run.probe_seconds:.2f}" for run in runs)
    return f"| {label} | {customers:,} | {wall} | {cpu:,.1f} s | {memory} | {probes} s | {verdict} |"


def _settled() -> None:
    """Write out what earlier steps left in the page cache (the last run's warehouse, a copied one), so that
    the kernel's writeback does not compete with the run about to be timed."""
    os.sync()


def _full_build(settings: Settings) -> Measurement:
    """A full build into a new warehouse file."""
    settings.duckdb_path.unlink(missing_ok=True)
    _settled()
    return _dbt_build(settings, *STAGING_SELECTION)


def _copy_warehouse(source: Path, destination: Path) -> None:
    """Copy a DuckDB file with its write-ahead log, if it has one (and remove a stale one it does not)."""
    shutil.copyfile(source, destination)
    source_wal, destination_wal = (Path(f"{path}.wal") for path in (source, destination))
    if source_wal.exists():
        shutil.copyfile(source_wal, destination_wal)
    else:
        destination_wal.unlink(missing_ok=True)


def run() -> str:
    sizes = _sizes()
    repeats = _repeats()
    lines = [
        "| run | customers | wall time | CPU time (user + sys) | peak RSS | speed probe before each run "
        "(CPU-s) | target met |",
        "|---|---:|---:|---:|---:|---:|:---:|",
    ]
    breakdown = []
    for customers in sizes:
        raw_dir = ensure_dataset(customers)
        warehouse = BENCH_DATA / f"staging-n{customers}.duckdb"
        warehouse.unlink(missing_ok=True)
        settings = Settings(raw_dir=raw_dir, duckdb_path=warehouse)
        # dbt re-parses the whole project when the warehouse path in the profile changes, as it does here
        # between sizes but not between a user's runs: the parse is done (and timed) first, on its own.
        parse = _dbt(settings, "parse")
        target = 180 if customers >= 1_000_000 else None
        full_build = functools.partial(_full_build, settings)
        runs = _repeated(full_build, f"full build, {customers:,} customers", repeats if target else 1)
        lines.append(table_row("full build", customers, runs, target))
        breakdown.append(
            median_run(runs).nodes
            + f"; the project parse before it (untimed in the build): {parse.wall_seconds:.1f} s wall, "
            f"{parse.cpu_seconds:.1f} s CPU"
        )
        warehouse.unlink(missing_ok=True)

    customers = max(sizes)
    split = BENCH_DATA / f"incremental-n{customers}"
    shutil.rmtree(split, ignore_errors=True)
    split_last_day(ensure_dataset(customers), split / "landing", split / "next_day")
    settings = Settings(raw_dir=split / "landing", duckdb_path=split / "warehouse.duckdb")
    print(f"building the landing zone up to the day before, at {customers:,} customers", flush=True)
    _dbt_build(settings, *STAGING_MODELS_ONLY)
    landed = sorted(folder.name for folder in (split / "next_day").iterdir())
    deliver(split / "next_day", settings.raw_dir)
    # Each run starts from the warehouse as it was before the day landed: the base models find the files
    # they have not loaded by comparing the landing zone with their own rows, so the day is new again.
    before = split / "before"
    _copy_warehouse(settings.duckdb_path, before)
    target = 30 if customers >= 1_000_000 else None

    def incremental_build() -> Measurement:
        _copy_warehouse(before, settings.duckdb_path)
        _settled()
        return _dbt_build(settings, *incremental_selection(landed))

    runs = _repeated(incremental_build, f"incremental, {customers:,} customers", repeats if target else 1)
    lines.append(table_row("incremental, +1 day", customers, runs, target))
    breakdown.append(median_run(runs).nodes)
    shutil.rmtree(split, ignore_errors=True)

    memory_limit = duckdb_memory_limit()
    return (
        "Full build: `dbt build --select +staging +quality +intermediate --exclude-resource-type "
        "unit_test`, every model under staging/, quality/ and intermediate/ (cleaning, quarantine, "
        "reconciliation, identity graph, web sessions), the seeds they read and their data tests; no "
        "marts. DuckDB file warehouse, "
        f"2 dbt threads, DuckDB memory_limit {memory_limit} and preserve_insertion_order off, on the "
        "generator's datasets (seed 1). The runs at 1,000,000 customers are repeated "
        f"(BENCH_STAGING_REPEATS, here {repeats}) and the table gives the median run's wall time and peak "
        "RSS, the median CPU time, each run's wall time, and how many runs met the target; the verdict "
        "is the median's, as the time the same "
        "build takes varies by about a fifth from run to run on this shared virtual machine, its CPU time "
        "with it. Before each timed run the page cache is written out (sync), so the writeback of the "
        "previous run's files does not fall inside the next. Each full build runs after a `dbt parse` "
        "of the same settings, so that, as in a user's repeated builds, dbt reads its saved parse "
        "instead of parsing the project anew (which it does whenever the warehouse path changes, here "
        "between sizes); that parse is timed on its own in the per-node lines. Wall time is what the "
        "targets are about; CPU time shows "
        "how much of it was work rather than waiting for a shared machine (compare it with the load "
        "average). Yet the CPU time of identical work moves too, by tens of percent within an hour on "
        "this shared machine: before each run the speed probe times a fixed single-threaded DuckDB "
        "workload (the text of 20 million numbers hashed, then sorted; bench/measure.py, "
        "machine_speed_probe) in CPU seconds, so that runs, and benchmark reports, can be compared at "
        "the machine's speed of the moment: a longer probe means a slower machine, not a slower build. "
        "The incremental run follows an untimed build of the same models, without tests, up "
        "to the day before the last; then the last day's shop_orders, web_events and esp_events land as "
        "new files, and the "
        "run builds what depends on those three sources (`source:<source>+` intersected with the layers "
        "above, as Dagster's raw-files sensor selects the assets downstream of the changed landing "
        "folders) with the data tests of what it rebuilt (`--indirect-selection buildable`). Incremental, "
        "and equal to a full refresh (tests/dbt/test_incremental_events.py): the event models "
        "(base_web__events, base_esp__events, int_web_sessions; stg_web__events and stg_esp__events are "
        "views over the base models' clean first deliveries), the order models "
        "(base_shop__orders, base_shop__order_lines, stg_shop__order_versions; stg_shop__orders and "
        "stg_shop__order_lines are views over the base models' latest clean rows), the identity graph "
        "(int_identity_record_edges, int_identity_edges, int_identity_components, int_identity_map), "
        "quality_quarantined_rows (the raw "
        "keys the base models wrote) and stg_landing_files (each landing "
        "file counted once, when it arrives; stg_data_clock and quality_raw_row_counts sum it). The CRM "
        "versions and consent base model read the data clock but are views over tables that do not "
        "(base_crm__customers, base_consent__events_parsed). The data "
        "tests of those models and views, except stg_landing_files, "
        "check the rows the run wrote (macro rows_written_by_this_run: "
        "row-local checks on the new rows, uniqueness as new keys unique among themselves and absent from "
        "the older rows); relationships tests check every row. The other selected models (among them "
        "the consent and CRM views and the reconciliation models) are rebuilt and tested over all rows. "
        "The row-local "
        "checks of each model are one column_checks test (one query per model, not one per column).\n\n"
        + "\n".join(lines)
        + "\n\nPer node (dbt run_results.json):\n\n"
        + "\n".join(breakdown)
        + "\n"
    )
