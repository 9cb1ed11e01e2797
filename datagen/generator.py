"""Orchestration: persons and catalogue once, then every person-level source chunk by chunk."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datagen import crm, esp, orders, truth, web
from datagen.catalogue import Catalogue, build_catalogue, products_table
from datagen.config import GeneratorConfig, Timeline
from datagen.context import Chunk, Seen
from datagen.defects import DefectLog
from datagen.persons import MAX_DEVICES, Persons, build_persons, chunk_emails
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


@dataclass(frozen=True)
class ChunkSimulation:
    """One chunk of persons, simulated: its context and every source's draws and tables, in the order the
    generator makes them (each chunk has its own random stream, so the order of the calls is the output)."""

    chunk: Chunk
    crm: crm.CrmOutput
    orders: orders.OrderSim
    order_tables: orders.OrdersOutput
    web: web.WebOutput
    esp: esp.EspOutput


@dataclass(frozen=True)
class World:
    """What every chunk shares: the timeline, all persons, the catalogue and the campaign calendar."""

    timeline: Timeline
    persons: Persons
    catalogue: Catalogue
    campaigns: esp.Campaigns


def build_world(config: GeneratorConfig) -> World:
    tl = Timeline.from_config(config)
    return World(
        timeline=tl,
        persons=build_persons(config, tl, _rng(config.seed, _PERSONS)),
        catalogue=build_catalogue(config, tl, _rng(config.seed, _CATALOGUE)),
        campaigns=esp.campaigns(tl.email_start, tl.cutoff),
    )


def simulate_chunks(config: GeneratorConfig, world: World) -> Iterator[ChunkSimulation]:
    """Every chunk of the world's persons simulated, in order: what ``generate`` writes, and what a benchmark
    replays (the generator is deterministic) to read true quantities the written data shows only in part."""
    people = world.persons
    serial = 1
    for index in range(-(-people.n // CHUNK_PERSONS)):
        lo, hi = index * CHUNK_PERSONS, min((index + 1) * CHUNK_PERSONS, people.n)
        size = hi - lo
        ch = Chunk(
            index=index,
            lo=lo,
            hi=hi,
            persons=people,
            catalogue=world.catalogue,
            config=config,
            tl=world.timeline,
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
        esp_out = esp.build(ch, world.campaigns, crm_out.has_record)
        yield ChunkSimulation(ch, crm_out, sim, ord_out, web_out, esp_out)


def generate(config: GeneratorConfig, progress: Callable[[str], None] | None = None) -> GenerationSummary:
    """Generate all raw sources and the ground truth into ``config.out`` (replacing a previous run)."""
    say = progress or (lambda _line: None)
    world = build_world(config)
    people = world.persons
    say(
        f"persons: {people.n:,} ({config.customers:,} with an email); products: {world.catalogue.n:,}; "
        f"campaigns: {len(world.campaigns.at):,}"
    )

    config.out.mkdir(parents=True, exist_ok=True)
    out = Output(config.out, config.format, config.rows_per_file)
    try:
        out.submit("products", products_table(world.catalogue, _rng(config.seed, _PRODUCTS)))
        out.submit("fx_rates", truth.fx_rates(), truth=True)
        n_chunks = -(-people.n // CHUNK_PERSONS)
        for chunk in simulate_chunks(config, world):
            ch, ord_out, esp_out = chunk.chunk, chunk.order_tables, chunk.esp
            tables = {
                "crm_customers": chunk.crm.table,
                "shop_orders": ord_out.orders,
                "shop_order_lines": ord_out.lines,
                "web_events": chunk.web.table,
                "esp_events": esp_out.esp,
                "consent_events": esp_out.consent,
                "privacy_requests": esp_out.privacy,
            }
            truths = {
                "identities": truth.identities(ch),
                "persons": truth.persons(ch, ord_out, esp_out, chunk.crm.has_record),
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
                f"chunk {ch.index + 1}/{n_chunks}: persons {ch.hi:,}/{people.n:,}, "
                f"web_events +{chunk.web.table.num_rows:,}, esp_events +{esp_out.esp.num_rows:,}"
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
