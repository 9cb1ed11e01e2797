"""Reverse-ETL sync: a full sync of a synthetic audience to the ESP emulator in the Mailchimp and the Klaviyo
shape, then an incremental sync after 1% of the rows change.

Size: BENCH_SYNC_ROWS (default 1000000); e.g. BENCH_SYNC_ROWS=50000 for a quick run.
Targets: >= 20k profiles/s on the full sync; incremental requests in proportion to the changed rows.

The audience is a synthetic table with esp_audience's columns written straight into a DuckDB file (the sync
reads only that relation, so the dbt models upstream are not part of this measurement). The sync runs
through `personalize.sync.sync_audience`, as `personalize sync` does; the emulator runs in its own process
(EmulatorProcess) so it does not share this process's GIL.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import psutil

from bench.datasets import BENCH_DATA
from bench.measure import human_bytes
from personalize.settings import Settings
from personalize.sync import sync_audience
from reverse_etl.models import SyncResult
from reverse_etl.testing.remote import EmulatorProcess

TITLE = "Reverse-ETL sync to the ESP emulator"
DEFAULT_ROWS = 1_000_000
TARGET_ROWS_PER_SECOND = 20_000
CHANGED_SHARE = 0.01
LIST_ID = "bench"


def _rows() -> int:
    raw = os.environ.get("BENCH_SYNC_ROWS")
    return int(raw.replace("_", "")) if raw else DEFAULT_ROWS


def build_audience(path: Path, rows: int) -> None:
    """A synthetic activation.esp_audience: esp_audience's columns, realistic value lengths."""
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema activation")
        recs = []
        for n, (a, b) in enumerate(((7, 1), (11, 2), (13, 3)), start=1):
            product = f"((i * {a} + {b}) % 5000)"
            recs += [
                f"'sku-' || lpad({product}::varchar, 5, '0') as rec_{n}_product_id",
                f"'Product ' || {product} as rec_{n}_name",
                f"'https://shop.example.com/products/' || {product} as rec_{n}_url",
                f"'https://cdn.example.com/images/' || {product} || '.jpg' as rec_{n}_image",
            ]
        con.execute(
            f"""create table activation.esp_audience as
            select 'p' || lpad(i::varchar, 9, '0') as person_id,
                   'user' || i || '@example.com' as email,
                   'First' || i as first_name,
                   ['vip', 'loyal', 'at_risk', 'new', 'lapsed'][1 + i % 5] as segment,
                   ['High', 'Medium', 'Low'][1 + i % 3] as ltv_tier,
                   ['low', 'medium', 'high'][1 + (i // 7) % 3] as churn_band,
                   {", ".join(recs)},
                   'OFFER' || (i % 4) as offer,
                   timestamp '2025-12-31 00:00:00' as updated_at,
                   md5(i::varchar) as row_hash
            from range({rows}) as t(i)"""
        )
    finally:
        con.close()


def change_share(path: Path, share: float) -> int:
    con = duckdb.connect(str(path))
    try:
        every = round(1 / share)
        con.execute(
            f"update activation.esp_audience set offer = 'CHANGED' where hash(person_id) % {every} = 0"
        )
        changed = con.execute("select count(*) from activation.esp_audience where offer = 'CHANGED'")
        return int(changed.fetchall()[0][0])
    finally:
        con.close()


@dataclass(frozen=True)
class Measured:
    result: SyncResult
    seconds: float
    sync_cpu_seconds: float  # this process, all threads: the sync itself
    emulator_cpu_seconds: float
    requests: int
    bytes_sent_by_client: int
    bytes_received_by_client: int


def _totals(esp: EmulatorProcess) -> tuple[int, int, int]:
    summary = esp.summary()
    requests = sum(int(r["count"]) for r in summary["requests"])
    return requests, int(summary["bytes_received"]), int(summary["bytes_sent"])


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def measure(esp: EmulatorProcess, settings: Settings, destination: str) -> Measured:
    emulator = psutil.Process(esp.pid)
    before = _totals(esp)
    emulator_cpu = _cpu(emulator)
    cpu = time.process_time()
    started = time.perf_counter()
    result = sync_audience(settings, destination)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    emulator_cpu = _cpu(emulator) - emulator_cpu
    after = _totals(esp)
    if not result.ok:
        raise RuntimeError(f"{destination} sync did not succeed: {result.outcome}")
    return Measured(
        result, seconds, cpu, emulator_cpu, after[0] - before[0], after[1] - before[1], after[2] - before[2]
    )


def _line(shape: str, run: str, m: Measured) -> str:
    rate = m.result.confirmed / m.seconds if m.seconds else 0.0
    return (
        f"| {shape} | {run} | {m.result.sent:,} | {m.seconds:,.1f} s | {rate:,.0f} | {m.requests:,} "
        f"| {human_bytes(m.bytes_sent_by_client)} | {human_bytes(m.bytes_received_by_client)} "
        f"| {m.sync_cpu_seconds:,.1f} s | {m.emulator_cpu_seconds:,.1f} s |"
    )


def _one_shape(esp: EmulatorProcess, shape: str, rows: int) -> tuple[list[str], str]:
    warehouse = BENCH_DATA / f"sync-{shape}-n{rows}.duckdb"
    print(f"building a synthetic {rows:,}-row audience for {shape}", flush=True)
    build_audience(warehouse, rows)
    settings = Settings(raw_dir=BENCH_DATA, duckdb_path=warehouse)
    print(f"full sync to {shape}", flush=True)
    full = measure(esp, settings, shape)
    changed = change_share(warehouse, CHANGED_SHARE)
    print(f"incremental sync to {shape} after {changed:,} rows changed", flush=True)
    incremental = measure(esp, settings, shape)
    warehouse.unlink(missing_ok=True)
    if incremental.result.sent != changed:
        raise RuntimeError(f"{shape}: incremental sync sent {incremental.result.sent:,}, not {changed:,}")
    rate = full.result.confirmed / full.seconds
    met = "met" if rate >= TARGET_ROWS_PER_SECOND else "NOT met"
    verdict = (
        f"- {shape}: full sync {rate:,.0f} rows/s (target {TARGET_ROWS_PER_SECOND:,}: {met}); the "
        f"incremental sync sent {incremental.result.sent:,} rows for {changed:,} changed, in "
        f"{incremental.requests:,} requests ({incremental.requests / max(1, changed):.4f} per changed row; "
        f"the full sync made {full.requests / rows:.4f} per row)"
    )
    table = [_line(shape, "full", full), _line(shape, f"incremental ({changed:,} changed)", incremental)]
    return table, verdict


def run() -> str:
    rows = _rows()
    BENCH_DATA.mkdir(parents=True, exist_ok=True)
    lines = [
        "| shape | run | rows sent | wall time | rows/s | requests | bytes sent | bytes received "
        "| sync CPU | emulator CPU |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    verdicts: list[str] = []
    with EmulatorProcess(extra_args=["--no-rate-limits", "--job-delay", "0"]) as esp:
        env = {
            "MAILCHIMP_API_KEY": esp.mailchimp_api_key,
            "MAILCHIMP_LIST_ID": LIST_ID,
            "MAILCHIMP_BASE_URL": esp.mailchimp_url,
            "KLAVIYO_API_KEY": esp.klaviyo_api_key,
            "KLAVIYO_LIST_ID": LIST_ID,
            "KLAVIYO_BASE_URL": esp.base_url,
            "KLAVIYO_REVISION": "2026-07-15",
        }
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)  # sync_audience reads its settings from the environment, as the CLI does
        try:
            for shape in ("mailchimp", "klaviyo"):
                table, verdict = _one_shape(esp, shape, rows)
                lines += table
                verdicts.append(verdict)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        emulator = esp.summary()
    duplicates = emulator["mailchimp"]["duplicate_creates"] + emulator["klaviyo"]["duplicate_creates"]
    return (
        f"A full sync of a **synthetic** {rows:,}-person audience (a DuckDB table with esp_audience's "
        "columns, built by the script; not the dbt model's output) through `personalize.sync.sync_audience`, "
        "as `personalize sync --destination mailchimp|klaviyo` runs it, to the ESP emulator in its own "
        f"process (Klaviyo rate limits off, jobs processed at once). Then {CHANGED_SHARE:.0%} of the rows "
        "get a new offer and the sync runs again. Rows/s is confirmed rows over wall time, including "
        "reading the audience, diffing, sending, polling Klaviyo jobs and committing state. Requests and "
        "bytes are counted by the emulator (bytes sent: request bodies the sync sent; bytes received: whole "
        "responses). CPU is user + system time of the sync (this process, all threads) and of the emulator "
        "process over the same interval: on a busy machine it says what the run cost, where wall time also "
        "counts waiting for a core. Mailchimp: 500 members per batch, 4 connections, mirror mode; "
        "Klaviyo: import jobs of up to 10,000 profiles / 5 MB, polled, then bulk subscribe of the new "
        "(consenting) profiles. The "
        "sync and the emulator share the machine's cores.\n\n"
        + "\n".join(lines)
        + "\n\n"
        + "\n".join(verdicts)
        + f"\n- duplicate creates in the emulator: {duplicates}\n"
    )
