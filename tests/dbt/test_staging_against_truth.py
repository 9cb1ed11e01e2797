"""Staging, quality and identity on generated data, checked against the generator's ground truth.

One dataset with every defect injected is built once with real dbt; each test reads the warehouse.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from datagen import GeneratorConfig, generate
from personalize.dbt import run_dbt
from personalize.settings import Settings

CUSTOMERS = 2_500
SEED = 11

# Where each injected defect must end up. "quarantined:<reasons>" means the row is in the quarantine with
# one of those reasons; the other outcomes are checked by their own queries below.
QUARANTINE_REASONS = {
    ("shop_orders", "negative_amount"): {"negative_amount"},
    ("shop_orders", "non_numeric_amount"): {"non_numeric_amount"},
    ("shop_orders", "unknown_currency"): {"unknown_currency"},
    ("shop_orders", "unparseable_timestamp"): {"unparseable_timestamp"},
    ("shop_orders", "test_order"): {"test_order"},
    ("shop_order_lines", "negative_amount"): {"negative_amount"},
    ("shop_order_lines", "non_numeric_amount"): {"non_numeric_amount"},
    ("shop_order_lines", "orphan_line"): {"orphan_line"},
    ("shop_order_lines", "test_order"): {"order_quarantined"},
    ("crm_customers", "invalid_email"): {"invalid_email"},
    ("esp_events", "invalid_email"): {"invalid_email"},
    ("esp_events", "unparseable_timestamp"): {"unparseable_timestamp"},
    ("esp_events", "future_dated_event"): {"future_dated"},
    ("web_events", "unparseable_timestamp"): {"unparseable_timestamp"},
    ("web_events", "future_dated_event"): {"future_dated"},
}
BASE_MODELS = {
    "crm_customers": "staging.base_crm__customers",
    "shop_orders": "staging.base_shop__orders",
    "shop_order_lines": "staging.base_shop__order_lines",
    "products": "staging.base_shop__products",
    "web_events": "staging.base_web__events",
    "esp_events": "staging.base_esp__events",
    "consent_events": "staging.base_consent__events",
    "privacy_requests": "staging.base_privacy__requests",
}
# The base models that store raw_row_key only where their cleaned key column does not give it back (macro
# stored_raw_row_key), with that column: a row's delivered key is read as the macro read_raw_row_key does.
CLEAN_KEY_COLUMNS = {"web_events": "event_id", "esp_events": "event_id"}


def _raw_row_key(source: str, alias: str = "b") -> str:
    column = CLEAN_KEY_COLUMNS.get(source)
    return f"coalesce({alias}.raw_row_key, {alias}.{column})" if column else f"{alias}.raw_row_key"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path]:
    """The whole project built on the dataset, and the folder of its `dbt docs generate`."""
    root = tmp_path_factory.mktemp("staging_truth")
    raw_dir = root / "raw"
    generate(GeneratorConfig(customers=CUSTOMERS, seed=SEED, out=raw_dir))
    settings = Settings(raw_dir=raw_dir, duckdb_path=root / "warehouse.duckdb")
    run_dbt(["build"], settings, capture=True)
    # Before any test opens the warehouse: dbt needs the file's write lock. Its own target folder, so the
    # catalog is this build's whatever other test modules' dbt runs write.
    docs = root / "docs"
    run_dbt(["docs", "generate", "--target-path", str(docs)], settings, capture=True)
    return settings, docs


@pytest.fixture(scope="module")
def warehouse(built: tuple[Settings, Path]) -> Iterator[duckdb.DuckDBPyConnection]:
    settings, _ = built
    connection = duckdb.connect(str(settings.duckdb_path), read_only=True)
    truth = settings.raw_dir / "_truth"
    connection.execute(
        f"create temp view truth_defects as select * from read_parquet('{truth}/defects.parquet')"
    )
    connection.execute(
        f"create temp view truth_identities as select * from read_parquet('{truth}/identities.parquet')"
    )
    yield connection
    connection.close()


def _rows(connection: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return connection.sql(sql).fetchall()


def test_every_source_reconciles(warehouse: duckdb.DuckDBPyConnection) -> None:
    rows = _rows(
        warehouse, "select source_name, raw_rows, difference from quality.quality_source_reconciliation"
    )
    assert len(rows) == 8
    assert all(raw > 0 for _, raw, _ in rows)
    assert [(name, difference) for name, _, difference in rows if difference != 0] == []


@pytest.mark.parametrize(("source", "defect_type"), sorted(QUARANTINE_REASONS))
def test_defect_is_quarantined_with_its_reason(
    warehouse: duckdb.DuckDBPyConnection, source: str, defect_type: str
) -> None:
    # A row can carry several defects (a duplicate delivery of a future-dated event, say); the reason must
    # then be one of the reasons of its own defects.
    outcomes = _rows(
        warehouse,
        f"""
        with defect_rows as (
            select row_key from truth_defects where source = '{source}' and defect_type = '{defect_type}'
        ),
        allowed as (
            select d.row_key, list(distinct t.defect_type) as defects
            from defect_rows d join truth_defects t on t.source = '{source}' and t.row_key = d.row_key
            group by d.row_key
        )
        select a.row_key, a.defects, b.quarantine_reason
        from allowed a left join {BASE_MODELS[source]} b on {_raw_row_key(source)} = a.row_key
        """,
    )
    assert outcomes, f"the generator injected no {defect_type} into {source}"
    reasons_by_defect = {d: r for (s, d), r in QUARANTINE_REASONS.items() if s == source}
    wrong = [
        (key, defects, reason)
        for key, defects, reason in outcomes
        if reason not in set().union(*(reasons_by_defect.get(d, set()) for d in defects))
    ]
    assert wrong == [], f"{len(wrong)} of {len(outcomes)} {defect_type} rows misplaced, e.g. {wrong[:3]}"


def test_repaired_defects_stay_clean_and_are_repaired(warehouse: duckdb.DuckDBPyConnection) -> None:
    # Registered customers' orders with a broken email keep the order and drop the email.
    orders = _rows(
        warehouse,
        """
        select count(*), count(*) filter (where not b.has_valid_email)
        from truth_defects t join staging.base_shop__orders b on b.raw_row_key = t.row_key
        where t.source = 'shop_orders' and t.defect_type = 'invalid_email' and b.customer_id is not null
            and b.quarantine_reason is null
        """,
    )[0]
    assert orders[0] > 0 and orders[0] == orders[1]
    assert _rows(warehouse, "select count(*) from staging.stg_shop__orders where email like '%@@%'") == [(0,)]

    # CRM repairs: countries, names, birth dates, unparseable created_at.
    assert _rows(
        warehouse,
        """
        select count(*) from truth_defects t join staging.base_crm__customers b on b.raw_row_key = t.row_key
        where t.source = 'crm_customers' and t.defect_type = 'country_variant' and b.country_code is null
        """,
    ) == [(0,)]
    assert _rows(
        warehouse,
        """
        select count(*) from staging.stg_crm__customers
        where first_name <> trim(first_name) or first_name like '%  %' or upper(first_name) = first_name
            and length(first_name) > 1
        """,
    ) == [(0,)]
    impossible = _rows(
        warehouse,
        """
        select count(*), count(*) filter (where s.birth_date is null and s.had_impossible_birth_date)
        from truth_defects t
        join staging.base_crm__customers b on b.raw_row_key = t.row_key
        join staging.stg_crm__customers s on s.customer_id = b.customer_id and s.updated_at = b.updated_at
        where t.source = 'crm_customers' and t.defect_type = 'impossible_birth_date'
        """,
    )[0]
    assert impossible[0] > 0 and impossible[0] == impossible[1]
    assert _rows(
        warehouse,
        """
        select count(*) from truth_defects t join staging.base_crm__customers b on b.raw_row_key = t.row_key
        where t.source = 'crm_customers' and t.defect_type = 'unparseable_timestamp'
            and (b.quarantine_reason is not null or b.created_at is not null)
        """,
    ) == [(0,)]


def test_duplicates_collapse_to_one_clean_row(warehouse: duckdb.DuckDBPyConnection) -> None:
    for source, model, key in [
        ("web_events", "stg_web__events", "event_id"),
        ("esp_events", "stg_esp__events", "event_id"),
    ]:
        counts = _rows(
            warehouse,
            f"""
            with duplicated as (
                select distinct t.row_key from truth_defects t
                join {BASE_MODELS[source]} b
                    on {_raw_row_key(source)} = t.row_key and b.quarantine_reason is null
                where t.source = '{source}' and t.defect_type = 'duplicate_event_delivery'
            )
            select count(*) filter (where n <> 1) from (
                select d.row_key, count(s.{key}) as n
                from duplicated d left join staging.{model} s on s.{key} = d.row_key
                group by d.row_key
            )
            """,
        )
        assert counts == [(0,)], source
    redelivered = _rows(
        warehouse,
        """
        select count(*) filter (where not superseded_one) from (
            select t.row_key, count(*) filter (where b.is_superseded) >= 1 as superseded_one
            from truth_defects t join staging.base_shop__orders b on b.raw_row_key = t.row_key
            where t.source = 'shop_orders' and t.defect_type = 'duplicate_order_version'
                and b.quarantine_reason is null
            group by t.row_key
        )
        """,
    )
    assert redelivered == [(0,)]


def test_flags_for_bots_unknown_products_and_late_events(warehouse: duckdb.DuckDBPyConnection) -> None:
    bots = _rows(
        warehouse,
        """
        select count(*), count(*) filter (where s.is_bot)
        from truth_defects t join staging.stg_web__events s on s.event_id = t.row_key
        where t.source = 'web_events' and t.defect_type = 'bot_traffic'
        """,
    )[0]
    assert bots[0] > 0 and bots[0] == bots[1]
    assert _rows(
        warehouse,
        """
        select count(*) from staging.stg_web__events s
        where s.is_bot and s.event_id not in (
            select row_key from truth_defects where source = 'web_events' and defect_type = 'bot_traffic')
        """,
    ) == [(0,)]
    unknown = _rows(
        warehouse,
        """
        select count(*), count(*) filter (where s.is_unknown_product)
        from truth_defects t join staging.stg_web__events s on s.event_id = t.row_key
        where t.source = 'web_events' and t.defect_type = 'unknown_product'
        """,
    )[0]
    assert unknown[0] > 0 and unknown[0] == unknown[1]
    late = _rows(
        warehouse,
        """
        select count(*), count(s.event_id) from truth_defects t
        left join staging.stg_web__events s on s.event_id = t.row_key
        where t.source = 'web_events' and t.defect_type = 'late_arriving_event'
        """,
    )[0]
    assert late[0] > 0 and late[0] == late[1]


@pytest.mark.parametrize("source", sorted(CLEAN_KEY_COLUMNS))
def test_every_delivered_key_is_read_back(warehouse: duckdb.DuckDBPyConnection, source: str) -> None:
    # raw_row_key is stored only for the keys that the cleaned key column does not give back (delivered
    # empty, missing or padded); read back, the keys are the delivered ones, row for row.
    column = CLEAN_KEY_COLUMNS[source]
    delivered = f"select coalesce({column}, '') as row_key from raw.{source}"
    read_back = f"select {_raw_row_key(source)} as row_key from {BASE_MODELS[source]} b"
    differences = f"({delivered} except all {read_back}) union all ({read_back} except all {delivered})"
    assert _rows(warehouse, differences) == []
    stored, not_given_back = _rows(
        warehouse,
        f"""
        select
            (select count(raw_row_key) from {BASE_MODELS[source]}),
            (
                select count(*) from raw.{source}
                where {column} is null or {column} = '' or {column} <> trim({column})
            )
        """,
    )[0]
    assert stored == not_given_back


def test_no_clean_row_is_lost(warehouse: duckdb.DuckDBPyConnection) -> None:
    # A raw row that the generator did not damage is never quarantined.
    for source, model in BASE_MODELS.items():
        wrongly = _rows(
            warehouse,
            f"""
            select {_raw_row_key(source)}, b.quarantine_reason from {model} b
            where b.quarantine_reason is not null
                and b.quarantine_reason <> 'order_quarantined'
                and {_raw_row_key(source)} not in (
                    select row_key from truth_defects where source = '{source}'
                )
            limit 5
            """,
        )
        assert wrongly == [], f"{source}: clean raw rows quarantined: {wrongly}"


# Every amount converted to the reporting currency (macro in_reporting_currency).
REPORTING_MONEY = {
    "staging.stg_shop__orders": ("net_revenue_reporting", "total_reporting"),
    "staging.stg_shop__order_versions": ("net_revenue_reporting", "total_reporting"),
    "staging.stg_shop__order_lines": ("unit_price_reporting", "line_value_reporting"),
    "staging.stg_shop__products": ("price_reporting",),
}


def test_reporting_money_is_fixed_point(warehouse: duckdb.DuckDBPyConnection) -> None:
    # As doubles, DuckDB's multi-threaded sums of these amounts came out different in the last bits from
    # one build of the same data to the next, so the ML features and the trained models did too. Data this
    # small is summed on one thread, so the type is what a test can check.
    for relation, columns in REPORTING_MONEY.items():
        types = {row[0]: row[1] for row in _rows(warehouse, f"describe {relation}")}
        for column in columns:
            assert types[column].startswith("DECIMAL("), f"{relation}.{column} is {types[column]}"
    # Converted once per row: each amount is the source amount times its fx rate, rounded to 6 decimals
    # (half a millionth at most, and the double product's own error).
    assert _rows(
        warehouse,
        """
        select count(*) from staging.stg_shop__orders
        where abs(net_revenue_reporting - (subtotal - discount) * fx_rate_to_reporting) > 0.0000006
        """,
    ) == [(0,)]


def test_identity_resolution_against_truth(warehouse: duckdb.DuckDBPyConnection) -> None:
    # Pairwise over identifiers: a pair is positive when both identifiers belong to one person.
    precision, recall, unmapped = _rows(
        warehouse,
        """
        with joined as (
            select t.true_person_id, m.person_id
            from truth_identities t
            left join intermediate.int_identity_map m using (identifier_type, identifier)
        ),
        true_pairs as (
            select sum(n * (n - 1) / 2) as p
            from (select count(*) as n from joined group by true_person_id)
        ),
        found_pairs as (
            select sum(n * (n - 1) / 2) as p
            from (select count(*) as n from joined where person_id is not null group by person_id)
        ),
        correct_pairs as (
            select sum(n * (n - 1) / 2) as p
            from (
                select count(*) as n from joined where person_id is not null
                group by true_person_id, person_id
            )
        )
        select
            (select p from correct_pairs) / (select p from found_pairs),
            (select p from correct_pairs) / (select p from true_pairs),
            (select count(*) from joined where person_id is null)
        """,
    )[0]
    assert precision >= 0.995, precision
    assert recall >= 0.99, recall
    total = _rows(warehouse, "select count(*) from truth_identities")[0][0]
    assert unmapped <= 0.01 * total
    # Nothing that is not a real identifier (test orders, bots) becomes a person.
    assert _rows(
        warehouse,
        """
        select count(*) from intermediate.int_identity_map m
        anti join truth_identities t using (identifier_type, identifier)
        """,
    ) == [(0,)]


def test_every_person_is_one_component(warehouse: duckdb.DuckDBPyConnection) -> None:
    persons, mapped = _rows(
        warehouse,
        """
        select (select count(*) from marts.persons),
            (select count(distinct person_id) from intermediate.int_identity_map)
        """,
    )[0]
    assert persons == mapped > CUSTOMERS


def test_docs_generate_and_every_model_and_column_is_described(built: tuple[Settings, Path]) -> None:
    _, docs = built
    manifest = json.loads((docs / "manifest.json").read_text())
    catalog = json.loads((docs / "catalog.json").read_text())
    assert (docs / "index.html").is_file()
    nodes = {
        unique_id: node
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] in {"model", "seed", "snapshot"} and node["package_name"] == "personalize"
    }
    assert len(nodes) > 50  # the whole project, not a selection
    undescribed = [unique_id for unique_id, node in nodes.items() if not node["description"].strip()]
    undescribed += [
        f"{unique_id} (source)" for unique_id, source in manifest["sources"].items()
        if not source["description"].strip()
    ]  # fmt: skip
    # The columns the warehouse holds (dbt's catalog), each described in its model's yml, and each
    # source column the yml declares.
    unbuilt, bare_columns = [], []
    for unique_id, node in nodes.items():
        if unique_id not in catalog["nodes"]:
            unbuilt.append(unique_id)
            continue
        described = {name.lower(): column["description"] for name, column in node["columns"].items()}
        bare_columns += [
            f"{node['name']}.{name}"
            for name in catalog["nodes"][unique_id]["columns"]
            if not described.get(name.lower(), "").strip()
        ]
    for source in manifest["sources"].values():
        bare_columns += [
            f"{source['source_name']}.{source['name']}.{name}"
            for name, column in source["columns"].items()
            if not column["description"].strip()
        ]
    assert undescribed == []
    assert unbuilt == []
    assert bare_columns == []
