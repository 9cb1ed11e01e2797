"""Orchestration: persons and catalogue once, then every person-level source chunk by chunk."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datagen import crm, esp, orders, truth, web
from datagen.catalogue import build_catalogue, products_table
from datagen.config import GeneratorConfig, Timeline
from datagen.context import Chunk, Seen
from datagen.defects import DefectLog
from datagen.persons import MAX_DEVICES, build_persons, chunk_emails
from datagen.schema import SOURCES
from datagen.writer import Output

# Fixed (not configurable) so that output does not depend on anything but the config.
CHUNK_PERSONS = 50_000
_PERSONS, _CATALOGUE, _PRODUCTS, _CHUNK = range(4)


@dataclass(frozen=True)
class GenerationSummary:
    rows: dict[str, int]
    """Rows per raw source (all eight sources, zero if empty)."""
    truth_rows: dict[str, int]
    """Rows per _truth table."""
    files: int
    """Number of files written (raw parts and truth tables)."""
    bytes_written: int
    persons: int
    """True persons (customers and prospects with an email, anonymous visitors and bots)."""
    paths: tuple[Path, ...]
    """Every file written, sorted."""


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def generate(config: GeneratorConfig, progress: Callable[[str], None] | None = None) -> GenerationSummary:
    """Generate all raw sources and the ground truth into ``config.out`` (replacing a previous run)."""
    say = progress or (lambda _line: None)
    tl = Timeline.from_config(config)
    people = build_persons(config, tl, _rng(config.seed, _PERSONS))
    catalogue = build_catalogue(config, tl, _rng(config.seed, _CATALOGUE))
    camp = esp.campaigns(tl.email_start, tl.cutoff)
    say(
        f"persons: {people.n:,} ({config.customers:,} with an email); products: {catalogue.n:,}; "
        f"campaigns: {len(camp.at):,}"
    )

    config.out.mkdir(parents=True, exist_ok=True)
    out = Output(config.out, config.format, config.rows_per_file)
    try:
        out.submit("products", products_table(catalogue, _rng(config.seed, _PRODUCTS)))
        out.submit("fx_rates", truth.fx_rates(), truth=True)
        n_chunks = -(-people.n // CHUNK_PERSONS)
        serial = 1
        for index in range(n_chunks):
            lo, hi = index * CHUNK_PERSONS, min((index + 1) * CHUNK_PERSONS, people.n)
            size = hi - lo
            ch = Chunk(
                index=index,
                lo=lo,
                hi=hi,
                persons=people,
                catalogue=catalogue,
                config=config,
                tl=tl,
                rng=_rng(config.seed, _CHUNK, index),
                log=DefectLog(),
                emails=chunk_emails(people, lo, hi),
                seen=Seen(
                    email=np.zeros(size, dtype=bool),
                    shop_id=np.zeros(size, dtype=bool),
                    device=np.zeros((size, MAX_DEVICES), dtype=bool),
                ),
            )
            crm_out = crm.build(ch)
            sim = orders.simulate(ch, serial)
            ord_out = orders.build(ch, sim, serial + sim.n)
            serial = ord_out.next_serial
            web_out = web.build(ch, sim)
            esp_out = esp.build(ch, camp, crm_out.has_record)
            tables = {
                "crm_customers": crm_out.table,
                "shop_orders": ord_out.orders,
                "shop_order_lines": ord_out.lines,
                "web_events": web_out.table,
                "esp_events": esp_out.esp,
                "consent_events": esp_out.consent,
                "privacy_requests": esp_out.privacy,
            }
            truths = {
                "identities": truth.identities(ch),
                "persons": truth.persons(ch, ord_out, esp_out, crm_out.has_record),
                "defects": ch.log.table(),
            }
            if config.horizon_days:
                truths["future_orders"] = truth.future_orders(ch, ord_out)
                assert ord_out.future_details is not None
                truths["future_order_details"] = ord_out.future_details
            # Keep at most one finished chunk queued while the next one is generated.
            out.drain()
            for name, table in tables.items():
                out.submit(name, table)
            for name, table in truths.items():
                out.submit(name, table, truth=True)
            say(
                f"chunk {index + 1}/{n_chunks}: persons {hi:,}/{people.n:,}, "
                f"web_events +{web_out.table.num_rows:,}, esp_events +{esp_out.esp.num_rows:,}"
            )
        files, rows = out.finish()
    except BaseException:
        out.abort()
        raise

    raw_rows = {s: rows.get(s, 0) for s in SOURCES}
    truth_rows = {k.split("/", 1)[1]: v for k, v in rows.items() if k.startswith("_truth/")}
    for source in SOURCES:
        say(f"{source}: {raw_rows[source]:,} rows")
    size = sum(f.stat().st_size for f in files)
    say(f"wrote {len(files)} files, {size / 1e6:,.1f} MB to {config.out}")
    return GenerationSummary(
        rows=raw_rows,
        truth_rows=truth_rows,
        files=len(files),
        bytes_written=size,
        persons=people.n,
        paths=tuple(files),
    )
