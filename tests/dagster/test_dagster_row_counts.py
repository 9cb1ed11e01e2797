"""with_row_counts: the dbt asset's events get each table's row count, views none, and a failed dbt run still
yields what it built before raising."""

from contextlib import nullcontext

import dagster as dg
import pytest
from dagster_dbt import DagsterDbtCliRuntimeError

from dagster_app.assets.dbt import with_row_counts

NODES = {
    "model.p.orders": {
        "unique_id": "model.p.orders",
        "config": {"materialized": "table"},
        "relation_name": "orders",
    },
    "model.p.kept": {
        "unique_id": "model.p.kept",
        "config": {"materialized": "view"},
        "relation_name": "kept",
    },
    "seed.p.fx": {"unique_id": "seed.p.fx", "config": {"materialized": "seed"}, "relation_name": "fx"},
}
ROWS = {"orders": 12, "fx": 3}


class FakeAdapter:
    def __init__(self) -> None:
        self.queries: list[str] = []

    def connection_named(self, name: str):
        return nullcontext()

    def execute(self, sql: str, fetch: bool):
        self.queries.append(sql)
        if "missing" in sql:
            raise RuntimeError("Catalog Error: Table missing does not exist")
        return None, [[ROWS[sql.rsplit(" ", 1)[-1]]]]


class FakeInvocation:
    def __init__(self, events: list, error: Exception | None = None) -> None:
        self.manifest = {"nodes": NODES}
        self.adapter = FakeAdapter()
        self._events, self._error = events, error

    def stream(self):
        yield from self._events
        if self._error is not None:
            raise self._error


def _output(unique_id: str) -> dg.Output:
    return dg.Output(None, output_name=unique_id.replace(".", "_"), metadata={"unique_id": unique_id})


def _check(unique_id: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True, check_name="not_null", metadata={"unique_id": unique_id})


def test_tables_and_seeds_are_counted_and_views_are_not() -> None:
    invocation = FakeInvocation([_output("model.p.orders"), _output("model.p.kept"), _check("test.p.x"),
                                 _output("seed.p.fx")])  # fmt: skip
    events = list(with_row_counts(invocation))
    counts = [event.metadata.get("dagster/row_count") for event in events]
    assert [type(event) for event in events] == [dg.Output, dg.Output, dg.AssetCheckResult, dg.Output]
    assert [None if c is None else c.value for c in counts] == [12, None, None, 3]
    assert invocation.adapter.queries == ["select count(*) from orders", "select count(*) from fx"]


def test_a_failed_run_yields_what_was_built_then_raises() -> None:
    failure = DagsterDbtCliRuntimeError("dbt build failed")
    invocation = FakeInvocation([_output("model.p.orders")], error=failure)
    seen = []
    with pytest.raises(DagsterDbtCliRuntimeError):
        for event in with_row_counts(invocation):
            seen.append(event)
    assert [event.metadata["dagster/row_count"].value for event in seen] == [12]


def test_a_count_that_fails_leaves_the_event_without_one() -> None:
    nodes = {**NODES, "model.p.gone": {"unique_id": "model.p.gone", "config": {"materialized": "table"},
                                       "relation_name": "missing"}}  # fmt: skip
    invocation = FakeInvocation([_output("model.p.gone"), _output("model.p.orders")])
    invocation.manifest = {"nodes": nodes}
    events = list(with_row_counts(invocation))
    assert "dagster/row_count" not in events[0].metadata
    assert events[1].metadata["dagster/row_count"].value == 12
