"""Every mart built as of a past date equals the same mart built from the raw data cut at that date.

Two real dbt builds of one small generated landing zone (CSV): the whole data with var as_of = AS_OF, and
the data with every row timestamped after AS_OF dropped (tests/dbt/raw_truncation.py), also as of
AS_OF. The marts are found through the dbt manifest, so marts added to models/marts later are covered
without touching this test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dbt.as_of_warehouses import (
    AS_OF,
    LATE_REFUNDS,
    built_warehouse,
    fetch,
    mart_relations,
    row_differences,
)

# Columns whose value legitimately depends on when or how the build ran rather than on the data (none so
# far: every mart column is a function of the data as of AS_OF). Key: "schema.table".
RUN_DEPENDENT_COLUMNS: dict[str, set[str]] = {}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "as_of_warehouses"


@pytest.fixture(scope="module")
def whole_as_of(base: Path) -> Path:
    base.mkdir(exist_ok=True)
    return built_warehouse(base, "whole_as_of", None, AS_OF)


@pytest.fixture(scope="module")
def cut_at_as_of(base: Path, whole_as_of: Path) -> Path:
    return built_warehouse(base, "cut_at_as_of", AS_OF, AS_OF)


def test_the_data_changes_after_the_as_of_date(whole_as_of: Path) -> None:
    """Guard against a vacuous pass: after AS_OF there are new orders, and purchases made by AS_OF that
    were cancelled or refunded later (what leaked backward before marts read order versions)."""
    _, rows = fetch(
        whole_as_of,
        f"""
        with versions as (select * from staging.stg_shop__order_versions)
        select
            (select count(*) from versions where created_at >= date '{AS_OF}' + 1),
            (
                select count(*)
                from versions as at_as_of
                inner join versions as later
                    on at_as_of.order_id = later.order_id
                    and later.valid_from_at >= date '{AS_OF}' + 1
                where at_as_of.is_completed and not later.is_completed
                    and at_as_of.valid_from_at < date '{AS_OF}' + 1
                    and (at_as_of.valid_to_at is null or at_as_of.valid_to_at >= date '{AS_OF}' + 1)
            )
        """,
    )
    later_orders, purchases_undone_later = rows[0]
    assert later_orders > 0
    assert purchases_undone_later >= LATE_REFUNDS


def test_marts_are_found_in_the_manifest(base: Path, whole_as_of: Path) -> None:
    relations = mart_relations(base, "whole_as_of")
    assert {("marts", "customer_360"), ("marts", "customer_rfm"), ("marts", "persons")} <= set(relations)


def test_every_mart_as_of_equals_the_mart_of_the_cut_data(
    base: Path, whole_as_of: Path, cut_at_as_of: Path
) -> None:
    relations = mart_relations(base, "whole_as_of")
    failures = {}
    for schema, table in relations:
        excluded = RUN_DEPENDENT_COLUMNS.get(f"{schema}.{table}", set())
        columns, _ = fetch(whole_as_of, f"select * from {schema}.{table} limit 0")
        selected = ", ".join(f'"{column}"' for column in columns if column not in excluded)
        compared = [column for column in columns if column not in excluded]
        _, whole_rows = fetch(whole_as_of, f"select {selected} from {schema}.{table}")
        _, cut_rows = fetch(cut_at_as_of, f"select {selected} from {schema}.{table}")
        assert whole_rows, f"{schema}.{table} is empty as of {AS_OF}: the comparison would prove nothing"
        problems = row_differences(compared, whole_rows, cut_rows)
        if problems:
            failures[f"{schema}.{table}"] = problems
    assert failures == {}
