"""behavioral_triggers and product_recommendations on generated data (real dbt runs).

The dbt unit tests pin the rules on hand-made rows; these tests check the invariants on a whole generated
warehouse, with the checks written independently of the models' SQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta

import duckdb
import pytest

from datagen import GeneratorConfig, generate
from personalize.dbt import run_dbt
from personalize.settings import Settings

CUSTOMERS = 1_500
SEED = 23
SELECTION = ["--select", "+behavioral_triggers", "+product_recommendations"]
EXCLUDED = [
    "--exclude-resource-type", "unit_test",
    "--exclude", "resource_type:test,path:dbt_project/models/staging",
    "resource_type:test,path:dbt_project/models/intermediate",
]  # fmt: skip

# What each person bought in a completed order, attributed like the marts do (shop account, else email).
PURCHASED_PRODUCTS_SQL = """
    select distinct coalesce(accounts.person_id, emails.person_id) as person_id, lines.product_id
    from staging.stg_shop__orders as orders
    inner join staging.stg_shop__order_lines as lines on orders.order_id = lines.order_id
    left join intermediate.int_identity_map as accounts
        on accounts.identifier_type = 'shop_customer_id' and accounts.identifier = orders.customer_id
    left join intermediate.int_identity_map as emails
        on emails.identifier_type = 'email' and emails.identifier = orders.email
    where orders.is_completed
"""


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("personalization")
    generate(GeneratorConfig(customers=CUSTOMERS, seed=SEED, out=root / "raw"))
    built = Settings(raw_dir=root / "raw", duckdb_path=root / "warehouse.duckdb")
    # The two marts and everything upstream, with the marts' own data tests (contracts are enforced on
    # create). Upstream data tests and all unit tests run in the suite's full builds; vars are covered by
    # the unit tests' overrides.
    run_dbt(["build", *SELECTION, *EXCLUDED], built, capture=True)
    return built


@pytest.fixture(scope="module")
def warehouse(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(settings.duckdb_path), read_only=True)
    connection.execute(f"create temp view purchased_products as {PURCHASED_PRODUCTS_SQL}")
    yield connection
    connection.close()


def _rows(connection: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return connection.sql(sql).fetchall()


def test_every_person_gets_three_unbought_active_products(warehouse: duckdb.DuckDBPyConnection) -> None:
    persons, recommended_persons = _rows(
        warehouse,
        """
        select (select count(*) from marts.persons), count(distinct person_id)
        from marts.product_recommendations
        """,
    )[0]
    assert persons > CUSTOMERS and recommended_persons == persons
    # Ranks are exactly 1, 2, 3 for everyone (the catalogue has far more than 3 unbought products).
    assert _rows(
        warehouse,
        """
        select count(*) from (
            select person_id from marts.product_recommendations group by person_id
            having count(*) <> 3 or count(distinct product_id) <> 3
                or min(recommendation_rank) <> 1 or max(recommendation_rank) <> 3
        )
        """,
    ) == [(0,)]
    already_bought = _rows(
        warehouse,
        """
        select count(*) from marts.product_recommendations as recommendations
        inner join purchased_products
            on recommendations.person_id = purchased_products.person_id
            and recommendations.product_id = purchased_products.product_id
        """,
    )
    assert already_bought == [(0,)]
    inactive = _rows(
        warehouse,
        """
        select count(*) from marts.product_recommendations as recommendations
        inner join staging.stg_shop__products as products on recommendations.product_id = products.product_id
        where not products.is_active
        """,
    )
    assert inactive == [(0,)]


def test_methods_follow_the_data(warehouse: duckdb.DuckDBPyConnection) -> None:
    by_buyer_status = dict(
        _rows(
            warehouse,
            """
            select
                exists (select 1 from purchased_products where purchased_products.person_id = r.person_id)
                    as has_bought,
                list(distinct method order by method)
            from marts.product_recommendations as r
            group by has_bought
            """,
        )
    )
    # People who bought nothing only get popular products; buyers get co-purchase recommendations.
    assert by_buyer_status[False] == ["popular"]
    assert "co_purchase" in by_buyer_status[True]
    # Within a person, co_purchase ranks before the fallbacks, and scores fall with rank within a method.
    out_of_order = _rows(
        warehouse,
        """
        select count(*) from (
            select
                method,
                score,
                lag(method) over (partition by person_id order by recommendation_rank) as previous_method,
                lag(score) over (partition by person_id order by recommendation_rank) as previous_score
            from marts.product_recommendations
        )
        where (previous_method = method and score > previous_score)
            or (previous_method <> 'co_purchase' and method = 'co_purchase')
            or (previous_method = 'popular' and method = 'category_popular')
        """,
    )
    assert out_of_order == [(0,)]


def test_triggers_payloads_and_rules(warehouse: duckdb.DuckDBPyConnection) -> None:
    (as_of_date,) = _rows(warehouse, "select as_of_date from staging.stg_data_clock")[0]
    as_of_end = datetime.combine(as_of_date + timedelta(days=1), datetime.min.time())
    triggers = _rows(
        warehouse, "select person_id, trigger_name, fired_at, payload from marts.behavioral_triggers"
    )
    fired = {name for _, name, _, _ in triggers}
    assert fired == {"cart_abandoned", "browse_abandoned", "winback", "post_purchase_cross_sell"}
    catalogue = {row[0] for row in _rows(warehouse, "select product_id from staging.stg_shop__products")}
    latest_orders = dict(
        _rows(
            warehouse,
            """
            select coalesce(accounts.person_id, emails.person_id), arg_max(orders.order_id, orders.created_at)
            from staging.stg_shop__orders as orders
            left join intermediate.int_identity_map as accounts
                on accounts.identifier_type = 'shop_customer_id' and accounts.identifier = orders.customer_id
            left join intermediate.int_identity_map as emails
                on emails.identifier_type = 'email' and emails.identifier = orders.email
            where orders.is_completed
            group by 1
            """,
        )
    )
    stages = dict(_rows(warehouse, "select person_id, lifecycle_stage from marts.customer_360"))
    for person_id, name, fired_at, payload in triggers:
        body = json.loads(payload)
        assert fired_at < as_of_end, (name, person_id)
        if name == "cart_abandoned":
            assert body["cart_value"] >= 50 and set(body["product_ids"]) <= catalogue
        elif name == "browse_abandoned":
            assert fired_at >= as_of_end - timedelta(hours=24) and set(body["product_ids"]) <= catalogue
        elif name == "winback":
            assert stages[person_id] == "at_risk" and body["previous_stage"] != "at_risk"
            assert body["days_since_last_order"] >= 90
        else:
            # The latest order's day is 3-14 days before the as-of date; it fires 3 days after that day.
            assert body["order_id"] == latest_orders[person_id]
            assert as_of_end - timedelta(days=12) <= fired_at <= as_of_end - timedelta(days=1)
