"""Incremental event models: appending a new day of raw files and running incrementally gives exactly what
a full refresh gives, and a rerun with no new files changes nothing.

Besides the generator's next day, the new delivery carries hand-made web events that exercise each rule of
the incremental models: an identity merge (an anonymous device logs in as an existing customer, so the
sessions of that customer's other devices must be re-stamped), a login that joins two existing persons of
several identifiers each, the first visit of a brand-new device (a new person), a late event inside the
session timeout that joins two existing sessions, and a re-delivery that wins over the first receipt; a
products delivery adds a product that earlier events referred to (their is_unknown_product flips); and a new
version of a guest order changes its email, so an identifier and its person disappear from the identity
graph (a record edge that goes); a CRM file corrects a customer's record with another email, dated before the
new day (the record edges of a source with a new file). Hand-made shop rows exercise the incremental order
models: a new status of an old order (a new version that supersedes the current one), the first delivery of an
order whose lines were orphans (they turn clean), and a new line file with a re-delivery of an old line and a
line of an old order. Data tests of an
incremental build check only the rows it wrote (macro rows_written_by_this_run); the last test shows that
a bad row in a new file and a key clash with an older row still fail the build.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from datagen import GeneratorConfig, generate
from datagen.arrivals import deliver, split_last_day
from personalize.dbt import DbtError, run_dbt
from personalize.settings import Settings
from tests.conftest import SHOP_ORDERS_HEADER, write_csv

COMPARED = [
    "staging.base_shop__orders",
    "staging.base_shop__order_lines",
    "staging.stg_shop__order_versions",
    "staging.stg_crm__customer_versions",
    "staging.base_consent__events",
    "staging.base_web__events",
    "staging.base_esp__events",
    "staging.stg_web__events",
    "staging.stg_esp__events",
    "intermediate.int_web_sessions",
    "intermediate.int_identity_record_edges",
    "intermediate.int_identity_edges",
    "intermediate.int_identity_components",
    "intermediate.int_identity_map",
    "staging.stg_landing_files",
    "staging.stg_data_clock",
    "quality.quality_raw_row_counts",
    "quality.quality_quarantined_rows",
    "quality.quality_source_reconciliation",
]
# Run metadata: when the build that wrote the row started (and, for identity edges, its as-of date and data
# clock). The columns a full refresh does not share.
RUN_METADATA = ("loaded_at", "built_as_of_date", "built_latest_data_date")
# Only what the compared relations are built from (and their data tests): marts, ML and activation have their
# own suites, and building them five times here would only cost time. The unit tests do not read the
# warehouse, so five runs of them here would add nothing (9 CPU-s each) to the full build's one run
# (tests/dbt/test_staging_against_truth.py).
STAGING_UP_TO_QUALITY = [
    "--select",
    "+staging",
    "+intermediate",
    "+quality",
    "--exclude-resource-type",
    "unit_test",
]
WEB_EVENTS_HEADER = (
    "event_id", "anonymous_id", "user_id", "event_type", "product_id", "url", "search_query", "user_agent",
    "event_at", "received_at",
)  # fmt: skip
ORDER_LINES_HEADER = ("order_line_id", "order_id", "product_id", "quantity", "unit_price")
CRM_CUSTOMERS_HEADER = (
    "customer_id", "email", "first_name", "last_name", "phone", "birth_date", "gender", "country", "city",
    "postal_code", "created_at", "updated_at",
)  # fmt: skip
PRODUCTS_HEADER = (
    "product_id", "sku", "name", "category", "brand", "price", "currency", "is_active", "image_url",
    "product_url", "updated_at",
)  # fmt: skip
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"


@dataclass(frozen=True)
class Scenario:
    merged_device: str
    customer_id: str
    customer_devices: tuple[str, ...]
    joined_device: str
    joined_sessions_before: int
    redelivered_event: str
    catalogued_product: str
    joining_device: str
    joined_customer: str
    joined_nodes: tuple[str, ...]
    new_device: str
    moved_email: str
    refunded_order: str
    delivered_orphan_order: str
    redelivered_line: str
    crm_customer: str


def _query(settings: Settings, sql: str) -> list[tuple]:
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as connection:
        return connection.sql(sql).fetchall()


def _columns(connection: duckdb.DuckDBPyConnection, relation: str) -> str:
    names = [
        row[0] for row in connection.sql(f"describe {relation}").fetchall() if row[0] not in RUN_METADATA
    ]
    return ", ".join(f'"{name}"' for name in names)


def _differences(left: Settings, right: Settings, relation: str) -> tuple[int, int]:
    """Rows of `relation` in left and not in right, and the reverse (EXCEPT ALL, run metadata left out)."""
    with duckdb.connect() as connection:
        connection.execute(f"attach '{left.duckdb_path}' as left_db (read_only)")
        connection.execute(f"attach '{right.duckdb_path}' as right_db (read_only)")
        columns = _columns(connection, f"left_db.{relation}")
        left_rows = f"select {columns} from left_db.{relation}"
        right_rows = f"select {columns} from right_db.{relation}"
        only_left = connection.sql(f"select count(*) from ({left_rows} except all {right_rows})").fetchall()
        only_right = connection.sql(f"select count(*) from ({right_rows} except all {left_rows})").fetchall()
    return only_left[0][0], only_right[0][0]


def _snapshot(settings: Settings) -> dict[str, list[tuple]]:
    return {relation: _query(settings, f"select * from {relation} order by all") for relation in COMPARED}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _hand_made_events(settings: Settings) -> tuple[Scenario, list[tuple[str, ...]], list[tuple[str, ...]]]:
    """Pick identifiers of the warehouse as built and make the web events and order versions that exercise
    each incremental rule."""
    # A device that is a person on its own, whose node sorts before every node of a customer's person that
    # has other devices with sessions: logging in on it merges the two, and the merged person is named after
    # the device, so the customer's other devices change person without having a new event.
    merged_device, customer_id, merged_last_end = _query(
        settings,
        """
        with persons as (
            select person_id, count(*) as identifiers, min(component_node) as component_node
            from intermediate.int_identity_map group by person_id
        ),
        lone_devices as (
            select map.identifier as anonymous_id, map.component_node
            from intermediate.int_identity_map as map
            inner join persons on map.person_id = persons.person_id
            where map.identifier_type = 'anonymous_id' and persons.identifiers = 1
        ),
        customers as (
            select customer.identifier as customer_id, persons.component_node
            from intermediate.int_identity_map as customer
            inner join persons on customer.person_id = persons.person_id
            where customer.identifier_type = 'shop_customer_id'
                and exists (
                    select 1 from intermediate.int_web_sessions as sessions
                    where sessions.person_id = customer.person_id
                )
        )
        select lone_devices.anonymous_id, customers.customer_id,
            (select max(ended_at) from intermediate.int_web_sessions as sessions
             where sessions.anonymous_id = lone_devices.anonymous_id) as last_ended_at
        from lone_devices
        inner join customers on lone_devices.component_node < customers.component_node
        where exists (
            select 1 from intermediate.int_web_sessions as sessions
            where sessions.anonymous_id = lone_devices.anonymous_id
        )
        order by lone_devices.anonymous_id, customers.customer_id
        limit 1
        """,
    )[0]
    customer_devices = tuple(
        row[0]
        for row in _query(
            settings,
            f"""
            select distinct sessions.anonymous_id
            from intermediate.int_web_sessions as sessions
            inner join intermediate.int_identity_map as customer
                on sessions.person_id = customer.person_id
            where customer.identifier_type = 'shop_customer_id' and customer.identifier = '{customer_id}'
            """,
        )
    )
    # Two consecutive sessions of a device 31 to 60 minutes apart: an event in the middle of the gap is
    # within the timeout of both, so it joins them and renumbers the device's later sessions.
    joined_device, gap_start, gap_end = _query(
        settings,
        """
        select anonymous_id, ended_at, next_started_at
        from (
            select anonymous_id, ended_at,
                lead(started_at) over (partition by anonymous_id order by started_at) as next_started_at
            from intermediate.int_web_sessions
        ) as gaps
        where next_started_at - ended_at between interval 31 minute and interval 60 minute
        order by anonymous_id, ended_at
        limit 1
        """,
    )[0]
    joined_sessions_before = _query(
        settings, f"select count(*) from intermediate.int_web_sessions where anonymous_id = '{joined_device}'"
    )[0][0]
    # An event re-delivered in the new file with an earlier receipt and another URL: the new delivery wins.
    redelivered = _query(
        settings,
        """
        select event_id, anonymous_id, user_id, event_type, product_id, url, search_query, user_agent,
            event_at, received_at
        from staging.stg_web__events
        where not is_bot and received_at > event_at + interval 2 second
        order by event_id
        limit 1
        """,
    )[0]
    # A product that events referred to before the catalogue had it: their is_unknown_product flips.
    catalogued_product = _query(
        settings,
        "select min(product_id) from staging.stg_web__events where is_unknown_product",
    )[0][0]
    latest_received_at = _query(settings, "select max(received_at) from staging.stg_web__events")[0][0]
    # A quarantined event delivered again verbatim: quality_quarantined_rows numbers the two copies
    # (occurrence), so the incremental run must rank the new copy together with the one it holds.
    quarantined_again = _query(
        settings,
        f"""
        select {", ".join(WEB_EVENTS_HEADER)} from raw.web_events
        where event_id = (
            select min(coalesce(raw_row_key, event_id)) from staging.base_web__events
            where quarantine_reason = 'unparseable_timestamp' and coalesce(raw_row_key, event_id) <> ''
        )
        limit 1
        """,
    )[0]
    middle_of_gap = gap_start + (gap_end - gap_start) / 2
    # Two persons of three or more identifiers, apart from the merge above: a device of the first logs in
    # as a shop customer of the second, and the two components become one.
    persons_of_several = f"""
        select person_id from intermediate.int_identity_map group by person_id having count(*) >= 3
        except
        select person_id from intermediate.int_identity_map
        where identifier in ('{merged_device}', '{customer_id}')
    """
    joining_device, joining_person = _query(
        settings,
        f"""
        select identifier, person_id from intermediate.int_identity_map
        where identifier_type = 'anonymous_id' and person_id in ({persons_of_several})
            and identifier <> '{joined_device}'
        order by identifier limit 1
        """,
    )[0]
    joined_customer, joined_person = _query(
        settings,
        f"""
        select identifier, person_id from intermediate.int_identity_map
        where identifier_type = 'shop_customer_id' and person_id in ({persons_of_several})
            and person_id <> '{joining_person}'
        order by identifier limit 1
        """,
    )[0]
    joined_nodes = tuple(
        row[0]
        for row in _query(
            settings,
            "select identifier_type || ':' || identifier from intermediate.int_identity_map "
            f"where person_id in ('{joining_person}', '{joined_person}')",
        )
    )
    rows = [
        ("test-merge-login", merged_device, customer_id, "login", "", "/login", "", BROWSER,
         _iso(merged_last_end + timedelta(minutes=10)), _iso(latest_received_at)),
        ("test-join-persons", joining_device, joined_customer, "login", "", "/login", "", BROWSER,
         _iso(latest_received_at), _iso(latest_received_at)),
        ("test-new-device", "test-new-device", "", "page_view", "", "/", "", BROWSER,
         _iso(latest_received_at), _iso(latest_received_at)),
        ("test-late-view", joined_device, "", "page_view", "", "/late", "", BROWSER,
         _iso(middle_of_gap), _iso(latest_received_at)),
        (redelivered[0], redelivered[1], redelivered[2] or "", redelivered[3], redelivered[4] or "",
         "/redelivered", redelivered[6] or "", redelivered[7] or "", _iso(redelivered[8]),
         _iso(redelivered[9] - timedelta(seconds=1))),
        quarantined_again,
    ]  # fmt: skip
    # A guest order whose email is a person of its own, on no other order: a new version of the order with
    # another email takes that identifier's only edge away, and the identifier and its person disappear.
    moved_order, moved_email = _query(
        settings,
        """
        with lone_emails as (
            select min(identifier) as email from intermediate.int_identity_map
            group by person_id having count(*) = 1 and min(identifier_type) = 'email'
        )
        select versions.order_id, versions.email
        from staging.stg_shop__order_versions as versions
        inner join lone_emails on versions.email = lone_emails.email
        where versions.is_current_version and versions.customer_id is null
            and versions.valid_from_at
                < (select max(received_at) from staging.stg_web__events) - interval 1 hour
            and versions.email in (
                select email from staging.stg_shop__order_versions group by email having count(*) = 1
            )
        order by versions.order_id
        limit 1
        """,
    )[0]
    moved_version = _latest_raw_row(settings, "shop_orders", "order_id", moved_order)
    order_rows = [
        (*moved_version[:2], "test-moved@example.com", *moved_version[3:11], _iso(latest_received_at))
    ]
    scenario = Scenario(
        merged_device=merged_device,
        customer_id=customer_id,
        customer_devices=customer_devices,
        joined_device=joined_device,
        joined_sessions_before=joined_sessions_before,
        redelivered_event=redelivered[0],
        catalogued_product=catalogued_product,
        joining_device=joining_device,
        joined_customer=joined_customer,
        joined_nodes=joined_nodes,
        new_device="test-new-device",
        moved_email=moved_email,
        refunded_order="",
        delivered_orphan_order="",
        redelivered_line="",
        crm_customer="",
    )
    return scenario, rows, order_rows


def _hand_made_shop_rows(settings: Settings) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """Order and order-line rows of the new delivery: a refund of an old order, the first delivery of an
    order whose lines were orphans, and a new line file that re-delivers an old line and adds one to an old
    order."""
    latest = _query(settings, "select max(updated_at) from staging.stg_shop__orders")[0][0]
    refunded = _query(
        settings,
        """
        select order_id, customer_id, currency, subtotal, total, created_at
        from staging.stg_shop__orders
        where status = 'paid' and customer_id is not null
        order by order_id
        limit 1
        """,
    )[0]
    orphan_order = _query(
        settings,
        """
        select min(order_id) from (
            select order_id from staging.base_shop__order_lines
            group by order_id
            having bool_and(quarantine_reason = 'orphan_line')
        ) as orphan_orders
        """,
    )[0][0]
    old_line = _query(
        settings,
        """
        select order_line_id, order_id, product_id, quantity, unit_price
        from staging.base_shop__order_lines
        where quarantine_reason is null and not is_superseded
        order by order_line_id
        limit 1
        """,
    )[0]
    orders = [
        (refunded[0], refunded[1], "", "refunded", refunded[2], str(refunded[3]), "0", "0", "0",
         str(refunded[4]), _iso(refunded[5]), _iso(latest)),
        (orphan_order, refunded[1], "", "paid", "USD", "20", "0", "0", "0", "20", _iso(latest), _iso(latest)),
    ]  # fmt: skip
    lines = [
        tuple("" if value is None else str(value) for value in old_line),
        ("test-line-of-old-order", refunded[0], old_line[2], "1", "5"),
    ]
    return orders, lines


def _latest_raw_row(settings: Settings, folder: str, key_column: str, key: str) -> tuple:
    """The raw row of `key` in a landing folder with the latest updated_at: the version a hand-made delivery
    copies and changes."""
    [row] = _query(
        settings,
        f"""
        select * from read_parquet('{settings.raw_dir / folder}/*.parquet')
        where {key_column} = '{key}'
        order by try_cast(updated_at as timestamptz) desc
        limit 1
        """,
    )
    return row


def _hand_made_crm_rows(settings: Settings) -> tuple[str, list[tuple[str, ...]]]:
    """A new CRM file: a late correction of a customer's record, dated a second after its current version and
    before the as-of date, with another email. No timestamp of it falls on the new day, so only the landing
    file of a record source makes int_identity_record_edges recompute that source's edges."""
    customer_id, valid_from_at = _query(
        settings,
        """
        select customer_id, valid_from_at from staging.stg_crm__customer_versions
        where is_current_version and email is not null
            and valid_from_at < (select as_of_date from staging.stg_data_clock)
        order by customer_id
        limit 1
        """,
    )[0]
    latest_version = _latest_raw_row(settings, "crm_customers", "customer_id", customer_id)
    corrected_at = _iso(valid_from_at + timedelta(seconds=1))
    row = (latest_version[0], "test-crm-moved@example.com", *latest_version[2:11], corrected_at)
    return customer_id, [tuple("" if value is None else str(value) for value in row)]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Settings, Path]:
    root = tmp_path_factory.mktemp("incremental")
    generate(GeneratorConfig(customers=1_500, seed=21, out=root / "full"))
    split_last_day(root / "full", root / "landing", root / "next_day")
    # Same file name in two folders: dbt keeps its saved parse when only the folder changes (run_dbt).
    incremental = Settings(raw_dir=root / "landing", duckdb_path=root / "incremental" / "warehouse.duckdb")
    refreshed = Settings(raw_dir=root / "landing", duckdb_path=root / "refreshed" / "warehouse.duckdb")
    return incremental, refreshed, root / "next_day"


@pytest.fixture(scope="module")
def scenario(datasets: tuple[Settings, Settings, Path]) -> Scenario:
    """Build up to the day before, then land the next day with the hand-made events, build incrementally
    and build a full refresh of the same files."""
    incremental, refreshed, next_day = datasets
    run_dbt(["build", *STAGING_UP_TO_QUALITY], incremental, capture=True)
    picked, rows, order_rows = _hand_made_events(incremental)
    orders, lines = _hand_made_shop_rows(incremental)
    crm_customer, crm_rows = _hand_made_crm_rows(incremental)
    order_rows = [*order_rows, *orders]
    write_csv(next_day / "crm_customers" / "part-2.csv", CRM_CUSTOMERS_HEADER, crm_rows)
    write_csv(next_day / "shop_order_lines" / "part-2.csv", ORDER_LINES_HEADER, lines)
    picked = replace(
        picked,
        refunded_order=orders[0][0],
        delivered_orphan_order=orders[1][0],
        redelivered_line=lines[0][0],
        crm_customer=crm_customer,
    )

    write_csv(next_day / "web_events" / "part-2.csv", WEB_EVENTS_HEADER, rows)
    write_csv(next_day / "shop_orders" / "part-2.csv", SHOP_ORDERS_HEADER, order_rows)
    latest = _query(incremental, "select max(received_at) from staging.stg_web__events")[0][0]
    write_csv(
        next_day / "products" / "part-2.csv",
        PRODUCTS_HEADER,
        [(picked.catalogued_product, "SKU-LATE", "Late Tee", "apparel", "Northwind", "10", "USD", "true",
          "https://cdn.example.com/late.jpg", "https://shop.example.com/p/late", _iso(latest))],
    )  # fmt: skip
    deliver(next_day, incremental.raw_dir)
    run_dbt(["build", *STAGING_UP_TO_QUALITY], incremental, capture=True)
    run_dbt(["build", "--full-refresh", *STAGING_UP_TO_QUALITY], refreshed, capture=True)
    return picked


def test_incremental_run_after_a_new_day_equals_full_refresh(
    datasets: tuple[Settings, Settings, Path], scenario: Scenario
) -> None:
    incremental, refreshed, _ = datasets

    for relation in COMPARED:
        assert _differences(incremental, refreshed, relation) == (0, 0), relation

    # The hand-made events did what they were written for, so the comparison above covered each rule.
    person_of = dict(
        _query(
            incremental,
            "select identifier, person_id from intermediate.int_identity_map "
            f"where identifier in ('{scenario.merged_device}', '{scenario.customer_id}')",
        )
    )
    assert person_of[scenario.merged_device] == person_of[scenario.customer_id]
    # Two existing persons joined by a login: every identifier of both is one person now.
    assert _query(
        incremental,
        "select count(distinct person_id) from intermediate.int_identity_map where identifier_type || ':' || "
        f"identifier in ({', '.join(repr(node) for node in scenario.joined_nodes)})",
    ) == [(1,)]
    # A brand-new device is a new person of its own.
    assert _query(
        incremental,
        "select map.matched_by, count(*) over (partition by map.person_id) "
        "from intermediate.int_identity_map as map "
        f"inner join intermediate.int_identity_map as device on device.person_id = map.person_id "
        f"where device.identifier = '{scenario.new_device}'",
    ) == [("anonymous_visit", 1)]
    # The guest order's old email is gone from the graph, its new one is a person.
    assert _query(
        incremental,
        "select identifier, matched_by from intermediate.int_identity_map "
        f"where identifier in ('{scenario.moved_email}', 'test-moved@example.com')",
    ) == [("test-moved@example.com", "guest_checkout")]
    restamped = _query(
        incremental,
        "select distinct person_id from intermediate.int_web_sessions where anonymous_id in "
        f"({', '.join(repr(device) for device in (scenario.merged_device, *scenario.customer_devices))})",
    )
    assert restamped == [(person_of[scenario.customer_id],)]
    joined = _query(
        incremental,
        f"select count(*) from intermediate.int_web_sessions where anonymous_id = '{scenario.joined_device}'",
    )
    assert joined == [(scenario.joined_sessions_before - 1,)]
    assert _query(
        incremental,
        f"select url from staging.stg_web__events where event_id = '{scenario.redelivered_event}'",
    ) == [("/redelivered",)]
    assert _query(
        incremental,
        "select distinct is_unknown_product from staging.stg_web__events "
        f"where product_id = '{scenario.catalogued_product}'",
    ) == [(False,)]
    # The CRM record's new email joined its customer's person (the record edges of a source with a new file).
    crm_person = _query(
        incremental,
        "select person_id from intermediate.int_identity_map "
        f"where identifier_type = 'crm_customer_id' and identifier = '{scenario.crm_customer}'",
    )
    assert _query(
        incremental,
        "select person_id, matched_by from intermediate.int_identity_map "
        "where identifier_type = 'email' and identifier = 'test-crm-moved@example.com'",
    ) == [(crm_person[0][0], "crm_record_email")]
    # The refund is the old order's current version; the orphan lines' order arrived, so they are clean;
    # the re-delivered line is superseded by the row already held.
    refunded = f"select status from staging.stg_shop__orders where order_id = '{scenario.refunded_order}'"
    assert _query(incremental, refunded) == [("refunded",)]
    formerly_orphan = (
        "select count(*) > 0, count(quarantine_reason) from staging.base_shop__order_lines "
        f"where order_id = '{scenario.delivered_orphan_order}'"
    )
    assert _query(incremental, formerly_orphan) == [(True, 0)]
    assert _query(
        incremental,
        "select count(*), count(*) filter (where is_superseded) from staging.base_shop__order_lines "
        f"where order_line_id = '{scenario.redelivered_line}'",
    ) == [(2, 1)]
    # Only the new and changed rows were written by the incremental build.
    loaded_at = _query(
        incremental, "select loaded_at, count(*) from staging.stg_web__events group by loaded_at order by 1"
    )
    assert len(loaded_at) == 2 and loaded_at[1][1] < loaded_at[0][1] / 10


def test_rerun_without_new_files_is_idempotent(
    datasets: tuple[Settings, Settings, Path], scenario: Scenario
) -> None:
    incremental, _, _ = datasets
    # Every column, loaded_at included: a rerun with nothing new rewrites no row.
    before = _snapshot(incremental)

    run_dbt(["build", *STAGING_UP_TO_QUALITY], incremental, capture=True)

    assert _snapshot(incremental) == before


def test_tests_of_an_incremental_build_catch_bad_new_rows(
    datasets: tuple[Settings, Settings, Path], scenario: Scenario
) -> None:
    """Tests limited to the rows of the run still fail on a bad row of a new file, and on a new key that an
    older row already holds."""
    incremental, _, _ = datasets
    # An older session row (not rewritten: its device gets no new event) that holds the key of a session the
    # next build rewrites, the joined device's first one.
    with duckdb.connect(str(incremental.duckdb_path)) as connection:
        connection.execute(
            """
            insert into intermediate.int_web_sessions
            select * replace ('planted-device' as anonymous_id)
            from intermediate.int_web_sessions
            where anonymous_id = ? and session_number = 1
            """,
            [scenario.joined_device],
        )
        latest = connection.sql("select max(received_at) from staging.stg_web__events").fetchall()[0][0]
    write_csv(
        incremental.raw_dir / "web_events" / "part-3.csv",
        WEB_EVENTS_HEADER,
        [("test-another-view", scenario.joined_device, "", "page_view", "", "/again", "", BROWSER,
          _iso(latest), _iso(latest))],
    )  # fmt: skip
    # A bounce of an unknown kind passes base_esp__events (bounce types are not quarantined) and reaches
    # stg_esp__events, whose column_checks test (accepted_values(bounce_type)) must catch it.
    write_csv(
        incremental.raw_dir / "esp_events" / "part-3.csv",
        ("event_id", "email", "campaign_id", "event_type", "bounce_type", "url", "user_agent", "event_at"),
        [("test-bad-bounce", "someone@example.com", "c1", "bounce", "mushy", "", "", _iso(latest))],
    )

    with pytest.raises(DbtError) as failed:
        run_dbt(["build", *STAGING_UP_TO_QUALITY], incremental, capture=True)

    assert "column_checks_stg_esp__events" in failed.value.output
    assert "unique_across_runs_int_web_sessions_session_id" in failed.value.output
    # The build was incremental: the older rows were not rewritten, and the tests saw only the new ones.
    [(written, total)] = _query(
        incremental,
        "select count(*) filter (where loaded_at = (select max(loaded_at) from staging.stg_esp__events)), "
        "count(*) from staging.stg_esp__events",
    )
    assert 0 < written < total / 10
