"""ML training rows are point in time: deleting every raw row after a cutoff changes no feature at it.

Two real dbt builds of one small generated landing zone (CSV), both as of AS_OF so that TRAINING_CUTOFF is
a training cutoff of each: the whole data, and the data cut at TRAINING_CUTOFF. The rows of
ml_training_examples at that cutoff must carry the same features (labels may differ: their window lies
after the cut).

person_id is the identity graph's key as of the build's as-of date, so evidence after the cutoff may
relabel a person (a later login can bring a smaller identifier into their component). Rows are therefore
matched through the identifiers the cut build's person owns, all of which must belong to one person of
the whole build; a merge of two people by later evidence would leave rows unmatched and fail the test.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.dbt.as_of_warehouses import AS_OF, TRAINING_CUTOFF, built_warehouse, fetch, row_differences


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "as_of_warehouses"


@pytest.fixture(scope="module")
def whole_as_of(base: Path) -> Path:
    base.mkdir(exist_ok=True)
    return built_warehouse(base, "whole_as_of", None, AS_OF)


@pytest.fixture(scope="module")
def cut_at_cutoff(base: Path, whole_as_of: Path) -> Path:
    return built_warehouse(base, "cut_at_cutoff", TRAINING_CUTOFF, AS_OF, ("+path:dbt_project/models/ml",))


def _feature_columns(path: Path) -> list[str]:
    columns, _ = fetch(path, "select * from ml.ml_training_examples limit 0")
    return [column for column in columns if column.startswith(("f_", "btyd_"))]


def test_the_cutoff_is_a_training_cutoff_of_both_builds(whole_as_of: Path, cut_at_cutoff: Path) -> None:
    for path in (whole_as_of, cut_at_cutoff):
        # The main window's latest cutoff (the short window's, by default 60 days, is a month later).
        _, rows = fetch(
            path,
            "select cutoff_date from ml.ml_training_cutoffs where cutoff_index = 0 "
            "and horizon_days = (select max(horizon_days) from ml.ml_training_cutoffs)",
        )
        assert rows == [(TRAINING_CUTOFF,)]


def test_features_at_the_cutoff_ignore_everything_after_it(whole_as_of: Path, cut_at_cutoff: Path) -> None:
    features = _feature_columns(whole_as_of)
    assert len(features) >= 20
    selected = ", ".join(f"examples.{column}" for column in features)
    with duckdb.connect(str(whole_as_of), read_only=True) as connection:
        connection.execute(f"attach '{cut_at_cutoff}' as cut (read_only)")
        # Each person of the cut build, by the identifiers they own, is one person of the whole build.
        person_matches = connection.sql(
            """
            select cut_map.person_id as cut_person_id, count(distinct whole_map.person_id) as whole_persons,
                   min(whole_map.person_id) as whole_person_id
            from cut.intermediate.int_identity_map as cut_map
            inner join intermediate.int_identity_map as whole_map
                on cut_map.identifier_type = whole_map.identifier_type
                and cut_map.identifier = whole_map.identifier
            group by cut_map.person_id
            """
        ).fetchall()
        assert all(whole_persons == 1 for _, whole_persons, _ in person_matches)
        connection.execute(
            "create temp table person_matches (cut_person_id varchar, whole_person_id varchar)"
        )
        connection.executemany(
            "insert into person_matches values (?, ?)",
            [(cut_id, whole_id) for cut_id, _, whole_id in person_matches],
        )
        whole_rows = connection.sql(
            f"""
            select examples.person_id, {selected}
            from ml.ml_training_examples as examples
            where examples.cutoff_date = date '{TRAINING_CUTOFF}'
            """
        ).fetchall()
        cut_rows = connection.sql(
            f"""
            select coalesce(person_matches.whole_person_id, 'unmatched:' || examples.person_id), {selected}
            from cut.ml.ml_training_examples as examples
            left join person_matches
                on examples.person_id = person_matches.cut_person_id
            where examples.cutoff_date = date '{TRAINING_CUTOFF}'
            """
        ).fetchall()
    assert len(whole_rows) > 50
    assert row_differences(["person_id", *features], whole_rows, cut_rows) == []


def test_labels_use_the_window_after_the_cutoff(whole_as_of: Path, cut_at_cutoff: Path) -> None:
    """With nothing after the cutoff every person looks churned; the whole data has buyers in the window."""
    query = (
        "select sum(label_is_churned), count(*) from ml.ml_training_examples "
        f"where cutoff_date = date '{TRAINING_CUTOFF}'"
    )
    _, [(whole_churned, whole_count)] = fetch(whole_as_of, query)
    _, [(cut_churned, cut_count)] = fetch(cut_at_cutoff, query)
    assert cut_churned == cut_count
    assert whole_churned < whole_count


def test_seasonal_exposure_at_the_cutoff_ignores_everything_after_it(
    whole_as_of: Path, cut_at_cutoff: Path
) -> None:
    """The order counts behind each window's seasonal exposure at the cutoff (ml/stacking.py reads it
    with the features) come from days at or before it."""
    query = (
        "select horizon_days, last_year_window_orders, reference_year_orders, has_seasonal_history, "
        f"seasonal_exposure from ml.ml_seasonal_exposure where cutoff_date = date '{TRAINING_CUTOFF}'"
    )
    columns, whole_rows = fetch(whole_as_of, query)
    _, cut_rows = fetch(cut_at_cutoff, query)
    assert whole_rows, "the training cutoff has no seasonal exposure row"
    # Both counts are real: last year's window holds orders and the reference year more.
    assert all(0 < window < reference for _, window, reference, _, _ in whole_rows)
    assert row_differences(columns, whole_rows, cut_rows) == []


def test_seasonal_clock_to_the_cutoff_ignores_everything_after_it(
    whole_as_of: Path, cut_at_cutoff: Path
) -> None:
    """Every day of the seasonal clock up to the cutoff (ml/stacking.py measures the BTYD history at the
    cutoff on it) is the same without the orders after the cutoff; later days' counts may differ."""
    query = (
        "select clock_date, order_count, last_year_week_orders, reference_year_orders, has_seasonal_history, "
        "seasonal_index, seasonal_clock from ml.ml_seasonal_clock "
        f"where clock_date <= date '{TRAINING_CUTOFF}' order by clock_date"
    )
    columns, whole_rows = fetch(whole_as_of, query)
    _, cut_rows = fetch(cut_at_cutoff, query)
    # Real seasonal history: days whose index rests on a year of orders a year earlier, not all of them 1.
    weighed = [row for row in whole_rows if row[4]]
    assert weighed and any(row[5] != 1.0 for row in weighed)
    assert row_differences(columns, whole_rows, cut_rows) == []
    _, [(later_days,)] = fetch(
        cut_at_cutoff,
        f"select count(*) from ml.ml_seasonal_clock where clock_date > date '{TRAINING_CUTOFF}'",
    )
    assert later_days > 0  # both builds list the days to the as-of date
