"""Injected defects: rates match the settings, every listed row is dirty in the listed way, every unlisted
row is clean, and nothing lies after as_of except the listed future-dated events."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from datagen import RAW_COLUMNS, vocab
from datagen.schema import VALID_EMAIL_PATTERN

if TYPE_CHECKING:
    from tests.datagen.conftest import Dataset

KEY = {
    "crm_customers": "customer_id || '|' || updated_at",
    "shop_orders": "order_id || '|' || updated_at",
    "shop_order_lines": "order_line_id",
    "products": "product_id || '|' || updated_at",
    "web_events": "event_id",
    "esp_events": "event_id",
    "consent_events": "email || '|' || channel || '|' || event_at",
    "privacy_requests": "request_id",
}
TIME_COLUMNS = {
    "crm_customers": ("created_at", "updated_at"),
    "shop_orders": ("created_at", "updated_at"),
    "products": ("updated_at",),
    "web_events": ("event_at", "received_at"),
    "esp_events": ("event_at",),
    "consent_events": ("event_at",),
    "privacy_requests": ("requested_at",),
}
ISO = "('US', 'CA', 'GB', 'DE', 'FR', 'NL', 'ES', 'IT')"
BOT_UAS = "(" + ", ".join("'" + ua.replace("'", "''") + "'" for ua in vocab.BOT_USER_AGENTS) + ")"
BAD_EMAIL = f"not regexp_full_match(lower(trim(email)), '{VALID_EMAIL_PATTERN}')"
MONEY = ("subtotal", "discount", "shipping", "tax", "total")
LINE_PRODUCT_EVENT = "event_type in ('product_view', 'add_to_cart')"


def listed(ds: Dataset, source: str, defect: str) -> set[str]:
    rows = ds.sql("select row_key from truth_defects where source = ? and defect_type = ?", [source, defect])
    return {r[0] for r in rows}


def keys_where(ds: Dataset, source: str, condition: str) -> set[str]:
    return {r[0] for r in ds.sql(f"select {KEY[source]} from {source} where {condition}")}


def rows(ds: Dataset, source: str, condition: str = "true") -> int:
    return int(ds.one(f"select count(*) from {source} where {condition}"))


# (defect, source, population the rate is a share of, as SQL over that source)
RATE_CASES = [
    ("invalid_email", "crm_customers", "true"),
    ("invalid_email", "shop_orders", "email not like '%@test.invalid'"),
    ("invalid_email", "esp_events", "true"),
    ("name_format", "crm_customers", "true"),
    ("impossible_birth_date", "crm_customers", "true"),
    ("country_variant", "crm_customers", "true"),
    ("unparseable_timestamp", "crm_customers", "true"),
    ("duplicate_order_version", "shop_orders", "email not like '%@test.invalid'"),
    ("test_order", "shop_orders", "email not like '%@test.invalid'"),
    ("negative_amount", "shop_orders", "email not like '%@test.invalid'"),
    ("non_numeric_amount", "shop_orders", "email not like '%@test.invalid'"),
    ("unknown_currency", "shop_orders", "email not like '%@test.invalid'"),
    ("unparseable_timestamp", "shop_orders", "email not like '%@test.invalid'"),
    ("negative_amount", "shop_order_lines", "true"),
    ("non_numeric_amount", "shop_order_lines", "true"),
    ("unknown_product", "shop_order_lines", "true"),
    ("orphan_line", "shop_order_lines", "order_id in (select order_id from shop_orders)"),
    ("unknown_product", "web_events", LINE_PRODUCT_EVENT),
    ("unparseable_timestamp", "web_events", "true"),
    ("late_arriving_event", "web_events", "true"),
    ("future_dated_event", "web_events", "true"),
    ("duplicate_event_delivery", "web_events", "true"),
    ("unparseable_timestamp", "esp_events", "true"),
    ("future_dated_event", "esp_events", "true"),
    ("duplicate_event_delivery", "esp_events", "true"),
]


@pytest.mark.parametrize(("defect", "source", "population"), RATE_CASES)
def test_defect_rate_matches_setting(main: Dataset, defect: str, source: str, population: str) -> None:
    rate = getattr(main.config.defects, defect)
    base = rows(main, source, population)
    count = int(
        main.one("select count(*) from truth_defects where source = ? and defect_type = ?", [source, defect])
    )
    assert base > 1000
    assert abs(count / base - rate) <= 0.15 * rate + 3 / base, (count, base, rate)


def test_duplicate_person_and_bot_rates(main: Dataset) -> None:
    dup = int(main.one("select count(*) from truth_defects where defect_type = 'duplicate_person_record'"))
    crm_persons = int(main.one("select count(*) from truth_persons where in_crm"))
    rate = main.config.defects.duplicate_person_record
    assert abs(dup / crm_persons - rate) <= 0.15 * rate + 3 / crm_persons
    bots = int(main.one("select count(*) from truth_persons where is_bot"))
    assert bots == round(main.config.defects.bot_visitor * main.config.customers) > 0


def test_email_defects_are_exactly_the_invalid_emails(main: Dataset) -> None:
    for source in ("crm_customers", "shop_orders", "esp_events"):
        bad = keys_where(main, source, BAD_EMAIL)
        assert bad == listed(main, source, "invalid_email") != set(), source
    for source in ("consent_events", "privacy_requests"):
        assert rows(main, source, BAD_EMAIL) == 0


def test_timestamp_defects_are_exactly_the_unparseable_values(main: Dataset) -> None:
    damaged = {
        "crm_customers": "created_at",
        "shop_orders": "created_at",
        "web_events": "event_at",
        "esp_events": "event_at",
    }
    for source, columns in TIME_COLUMNS.items():
        for col in columns:
            bad = keys_where(main, source, f"{col} is null or try_cast({col} as timestamptz) is null")
            expected = listed(main, source, "unparseable_timestamp") if damaged.get(source) == col else set()
            assert bad == expected, (source, col)
            if expected:
                assert len(bad) > 5
    # Mixed offsets are normal: several renderings, all of which parse.
    offsets = {
        r[0]
        for r in main.sql(
            "select distinct right(event_at, 6) from web_events "
            "where try_cast(event_at as timestamptz) is not null"
        )
    }
    assert {"-05:00", "+01:00", "+05:30"} <= offsets and any(o.endswith("Z") for o in offsets)


def test_no_raw_data_after_as_of_except_listed_future_dated_events(main: Dataset) -> None:
    for source, columns in TIME_COLUMNS.items():
        for col in columns:
            late = keys_where(main, source, f"try_cast({col} as timestamptz) >= '{main.cutoff.isoformat()}'")
            expected = listed(main, source, "future_dated_event") if col == "event_at" else set()
            assert late == expected, (source, col)
    assert len(listed(main, "web_events", "future_dated_event")) > 5
    births = keys_where(main, "crm_customers", f"try_cast(birth_date as date) > '{main.config.as_of}'")
    assert births and births <= listed(main, "crm_customers", "impossible_birth_date")


def test_crm_field_defects(main: Dataset) -> None:
    src = "crm_customers"
    assert keys_where(main, src, f"country not in {ISO}") == listed(main, src, "country_variant")
    odd = """first_name <> upper(left(trim(first_name), 1)) || lower(substr(trim(first_name), 2))
          or last_name <> upper(left(trim(last_name), 1)) || lower(substr(trim(last_name), 2))"""
    assert keys_where(main, src, odd) == listed(main, src, "name_format")
    impossible = (
        f"try_cast(birth_date as date) > '{main.config.as_of}' or year(try_cast(birth_date as date)) < 1900"
    )
    assert keys_where(main, src, impossible) == listed(main, src, "impossible_birth_date")


def test_order_defects(main: Dataset) -> None:
    src = "shop_orders"
    non_numeric = " or ".join(f"try_cast({c} as decimal(18, 2)) is null" for c in MONEY)
    negative = " or ".join(f"try_cast({c} as decimal(18, 2)) < 0" for c in MONEY)
    assert keys_where(main, src, non_numeric) == listed(main, src, "non_numeric_amount")
    assert keys_where(main, src, negative) == listed(main, src, "negative_amount")
    assert keys_where(main, src, "currency not in (select currency from truth_fx_rates)") == listed(
        main, src, "unknown_currency"
    )
    assert keys_where(main, src, "email like '%@test.invalid'") == listed(main, src, "test_order")
    # Re-delivered versions are verbatim copies; every other (order_id, updated_at) is unique.
    twice = {r[0] for r in main.sql(f"select {KEY[src]} from {src} group by all having count(*) > 1")}
    assert twice == listed(main, src, "duplicate_order_version")
    assert main.one(f"select count(*) from (select distinct * from {src})") == main.one(
        f"select count(distinct {KEY[src]}) from {src}"
    )


def test_order_line_defects(main: Dataset) -> None:
    src = "shop_order_lines"
    assert keys_where(main, src, "order_id not in (select order_id from shop_orders)") == listed(
        main, src, "orphan_line"
    )
    assert keys_where(main, src, "product_id not in (select product_id from products)") == listed(
        main, src, "unknown_product"
    )
    assert keys_where(
        main, src, "try_cast(unit_price as decimal(18, 2)) is null or try_cast(quantity as integer) is null"
    ) == listed(main, src, "non_numeric_amount")
    assert keys_where(main, src, "try_cast(unit_price as decimal(18, 2)) < 0") == listed(
        main, src, "negative_amount"
    )
    assert keys_where(
        main, src, "order_id in (select order_id from shop_orders where email like '%@test.invalid')"
    ) == listed(main, src, "test_order")


def test_event_defects(main: Dataset) -> None:
    web = "web_events"
    assert keys_where(
        main, web, f"{LINE_PRODUCT_EVENT} and product_id not in (select product_id from products)"
    ) == listed(main, web, "unknown_product")
    assert keys_where(
        main, web, "try_cast(received_at as timestamptz) - try_cast(event_at as timestamptz) > interval 1 day"
    ) == listed(main, web, "late_arriving_event")
    assert keys_where(main, web, f"user_agent in {BOT_UAS}") == listed(main, web, "bot_traffic")
    for src in ("web_events", "esp_events"):
        twice = {r[0] for r in main.sql(f"select event_id from {src} group by 1 having count(*) > 1")}
        assert twice == listed(main, src, "duplicate_event_delivery"), src
        assert main.one(f"select max(n) from (select count(*) as n from {src} group by event_id)") == 2
    # Web re-deliveries differ at most in a later received_at; some do, some are verbatim.
    same_fields = " and ".join(
        f"a.{c} is not distinct from b.{c}" for c in RAW_COLUMNS[web] if c != "received_at"
    )
    later, same = main.sql(f"""
        with numbered as (select *, row_number() over (partition by event_id order by received_at) as k
                          from web_events)
        select count(*) filter (where a.received_at < b.received_at),
               count(*) filter (where a.received_at = b.received_at)
        from numbered a join numbered b on a.event_id = b.event_id and a.k = 1 and b.k = 2
        where {same_fields}""")[0]
    dup_count = len(listed(main, web, "duplicate_event_delivery"))
    assert later + same == dup_count and later > 0 and same > 0
    # Bots browse in rapid bursts.
    assert (
        main.one(f"""
        select median(gap) from (
            select epoch(event_at::timestamptz) - lag(epoch(event_at::timestamptz))
                   over (partition by anonymous_id order by event_at::timestamptz) as gap
            from web_events where user_agent in {BOT_UAS} and try_cast(event_at as timestamptz) is not null)
        """)
        <= 2
    )


def test_zero_rates_inject_nothing(clean: Dataset) -> None:
    ds = clean
    assert ds.one("select count(*) from truth_defects") == 0
    assert ds.one("select count(*) from truth_persons where is_bot") == 0
    for source in ("crm_customers", "shop_orders", "esp_events", "consent_events", "privacy_requests"):
        assert rows(ds, source, BAD_EMAIL) == 0, source
    for source, columns in TIME_COLUMNS.items():
        for col in columns:
            assert (
                rows(
                    ds,
                    source,
                    f"try_cast({col} as timestamptz) is null "
                    f"or {col}::timestamptz >= '{ds.cutoff.isoformat()}'",
                )
                == 0
            ), (source, col)
    for source, key in KEY.items():
        assert ds.one(f"select count(*) - count(distinct {key}) from {source}") == 0, source
    assert (
        rows(ds, "shop_orders", "email like '%@test.invalid' or currency not in ('USD', 'EUR', 'GBP', 'CAD')")
        == 0
    )
    assert (
        rows(
            ds,
            "shop_orders",
            " or ".join(f"try_cast({c} as decimal(18, 2)) is null or {c}::decimal(18, 2) < 0" for c in MONEY),
        )
        == 0
    )
    assert (
        rows(
            ds,
            "shop_order_lines",
            "order_id not in (select order_id from shop_orders) "
            "or product_id not in (select product_id from products)",
        )
        == 0
    )
    assert (
        rows(
            ds,
            "web_events",
            f"user_agent in {BOT_UAS} or (product_id is not null and product_id not in "
            "(select product_id from products))",
        )
        == 0
    )
    assert rows(ds, "web_events", "received_at::timestamptz - event_at::timestamptz > interval 1 minute") == 0
    assert rows(ds, "crm_customers", f"country not in {ISO} or birth_date::date > '{ds.config.as_of}'") == 0
