"""Property: whatever a person's consent history, their latest email-channel consent state wins.

Hypothesis draws batches of random consent histories (opt-ins and opt-outs at colliding instants, sms rows
that must not count, the same address in different spellings, changes after the data clock's as-of date).
Running dbt once per example would take minutes, so dbt builds the pipeline once on a tiny landing zone,
and each example then writes its batch as the consent_events landing file and replays dbt's own compiled
SQL (target/manifest.json) for every model between the raw consent source and esp_audience, in dependency
order, on the same DuckDB file: the real dbt logic, milliseconds per batch.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from personalize.dbt import run_dbt
from personalize.settings import PROJECT_DIR, Settings
from tests.conftest import SHOP_ORDERS_HEADER, write_csv

CONSENT_HEADER = ("email", "customer_id", "channel", "status", "source", "event_at")
PRODUCTS_HEADER = (
    "product_id", "sku", "name", "category", "brand", "price", "currency", "is_active", "image_url",
    "product_url", "updated_at",
)  # fmt: skip
BASE_TIME = datetime(2025, 6, 1, 12, 0, 0)
# Minutes from LATE_MINUTE on fall after the data clock (as-of 2025-12-31, from one order): future_dated.
LATE_MINUTE = 7
LATE_TIME = datetime(2026, 1, 3, 12, 0, 0)


@dataclass(frozen=True)
class Replay:
    connection: duckdb.DuckDBPyConnection
    consent_file: Path
    statements: list[str]  # create-or-replace statements, base_consent__events ... esp_audience


def _replay_statements(manifest_path: Path) -> list[str]:
    """dbt's compiled SQL for the models downstream of the consent source and upstream of esp_audience."""
    manifest = json.loads(manifest_path.read_text())
    nodes = manifest["nodes"]
    children = manifest["child_map"]
    parents = manifest["parent_map"]
    audience = next(key for key in nodes if key.startswith("model.") and key.endswith(".esp_audience"))

    def reach(start: str, edges: dict[str, list[str]]) -> set[str]:
        seen, stack = set(), [start]
        while stack:
            for nxt in edges.get(stack.pop(), []):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return seen

    consent_source = next(key for key in manifest["sources"] if key.endswith(".consent.events"))
    selected = (reach(consent_source, children) & (reach(audience, parents) | {audience})) | {audience}
    selected = {key for key in selected if key.startswith("model.")}

    ordered: list[str] = []
    while len(ordered) < len(selected):  # topological order
        for key in sorted(selected - set(ordered)):
            if all(p in ordered or p not in selected for p in nodes[key]["depends_on"]["nodes"]):
                ordered.append(key)
    statements = []
    for key in ordered:
        node = nodes[key]
        kind = node["config"]["materialized"]
        # The manifest comes from a build on a fresh warehouse, so an incremental model was compiled in its
        # full-refresh form (is_incremental() false): replayed as a table, it is the full refresh.
        if kind == "incremental":
            kind = "table"
        assert kind in ("table", "view"), f"{key} is {kind}; the replay handles tables, views, incrementals"
        statements.append(f"create or replace {kind} {node['relation_name']} as {node['compiled_code']}")
    return statements


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replay]:
    root = tmp_path_factory.mktemp("consent_property")
    raw_dir = root / "raw"
    # One order fixes the data clock (as-of 2025-12-31); three products fill the recommendation slots.
    write_csv(
        raw_dir / "shop_orders" / "orders.csv",
        SHOP_ORDERS_HEADER,
        [("1", "", "buyer@example.com", "paid", "USD", "10", "0", "0", "0", "10",
          "2025-12-31T10:00:00Z", "2025-12-31T10:00:00Z")],
    )  # fmt: skip
    write_csv(
        raw_dir / "products" / "products.csv",
        PRODUCTS_HEADER,
        [
            (f"P{i}", f"SKU{i}", f"Product {i}", "apparel", "Brand", "10", "USD", "true",
             f"https://img.example.com/{i}.jpg", f"https://shop.example.com/p/{i}", "2025-01-01T00:00:00Z")
            for i in range(1, 5)
        ],
    )  # fmt: skip
    consent_file = write_csv(
        raw_dir / "consent_events" / "consent.csv",
        CONSENT_HEADER,
        [("seed@example.com", "", "email", "opted_in", "signup", "2025-06-01T12:00:00Z")],
    )
    settings_ = Settings(raw_dir=raw_dir, duckdb_path=root / "warehouse.duckdb")
    run_dbt(
        ["build", "--select", "+esp_audience", "--resource-type", "model", "--resource-type", "seed"],
        settings_,
        capture=True,
    )  # fmt: skip
    # The shared target folder (tests/dbt/conftest.py), whose saved parse the build reused; the manifest
    # it wrote holds the SQL this build compiled.
    statements = _replay_statements(PROJECT_DIR / os.environ["DBT_TARGET_PATH"] / "manifest.json")
    connection = duckdb.connect(str(settings_.duckdb_path))
    yield Replay(connection, consent_file, statements)
    connection.close()


@st.composite
def consent_histories(draw: st.DrawFn) -> list[list[tuple[str, str, str, int]]]:
    """A batch of histories; history i belongs to person{i}@example.com. Event: (spelling, channel,
    status, minute). Few distinct minutes, so equal timestamps are common; see _event_time."""
    event = st.tuples(
        st.sampled_from(["lower", "upper", "padded"]),
        st.sampled_from(["email", "email", "email", "sms"]),
        st.sampled_from(["opted_in", "opted_out"]),
        st.integers(min_value=0, max_value=LATE_MINUTE + 1),
    )
    return draw(st.lists(st.lists(event, max_size=6), min_size=1, max_size=80))


def _spelling(email: str, style: str) -> str:
    return {"lower": email, "upper": email.upper(), "padded": f"  {email.title()} "}[style]


def _event_time(minute: int) -> datetime:
    late = minute >= LATE_MINUTE
    return (LATE_TIME if late else BASE_TIME) + timedelta(minutes=minute)


def _expected_state(history: list[tuple[str, str, str, int]]) -> str | None:
    """customer_360's state: the latest email-channel change up to the as-of date; on a timestamp tie an
    opt-out wins. None without any."""
    email_events = [
        (minute, status)
        for _, channel, status, minute in history
        if channel == "email" and minute < LATE_MINUTE
    ]
    if not email_events:
        return None
    latest = max(minute for minute, _ in email_events)
    return "opted_out" if ("opted_out" in {s for m, s in email_events if m == latest}) else "opted_in"


def _control(person_id: str) -> bool:
    return int(hashlib.md5(f"holdout-v1:{person_id}".encode()).hexdigest()[:8], 16) % 10_000 < 1_000


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=consent_histories())
def test_latest_consent_state_wins(replay: Replay, batch: list[list[tuple[str, str, str, int]]]) -> None:
    rows = [
        (_spelling(f"person{i}@example.com", style), "", channel, status, "test",
         _event_time(minute).strftime("%Y-%m-%dT%H:%M:%SZ"))
        for i, history in enumerate(batch)
        for style, channel, status, minute in history
    ]  # fmt: skip
    write_csv(replay.consent_file, CONSENT_HEADER, rows)
    for statement in replay.statements:
        replay.connection.execute(statement)

    states = {
        email: (status, can_email, person_id)
        for email, status, can_email, person_id in replay.connection.sql(
            "select email, email_consent_status, can_email, person_id from marts.customer_360"
        ).fetchall()
    }
    audience = {
        row[0] for row in replay.connection.sql("select email from activation.esp_audience").fetchall()
    }
    for i, history in enumerate(batch):
        email = f"person{i}@example.com"
        expected = _expected_state(history)
        if not any(minute < LATE_MINUTE for *_, minute in history):
            assert email not in states  # no row at all: the person does not exist (yet)
            continue
        status, can_email, person_id = states[email]
        assert status == expected, (email, history)
        assert can_email == (expected == "opted_in"), (email, history)
        # A late opt-out counts on arrival; a late opt-in (held back as future-dated) does not.
        opted_out_late = any(
            channel == "email" and status == "opted_out" and minute >= LATE_MINUTE
            for _, channel, status, minute in history
        )
        in_audience = expected == "opted_in" and not opted_out_late and not _control(person_id)
        assert (email in audience) == in_audience, (email, history)
