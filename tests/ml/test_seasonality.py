"""Seasonal exposure and clock: the loaders attach dbt's ml_seasonal_exposure and ml_seasonal_clock tables
to the frames, the BTYD stacking and the horizon ratios forecast each window for its effective days
(length x exposure) from each person's history measured on the clock (average days), and the production
LTV model starts each row from the log of its window's exposure (seasonal_margin).

The tables' SQL is checked by the dbt unit tests ml_seasonal_exposure_reads_last_year and
ml_seasonal_clock_weighs_days_by_last_year and the point-in-time tests; here they are written by hand on
the simulated tables.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml import registry
from ml.frames import (
    SEASONAL_CLOCK_TABLE,
    SEASONAL_EXPOSURE_TABLE,
    ExampleFrame,
    FrameError,
    SeasonalClock,
    load_scoring_features,
    load_training_examples,
)
from ml.pipeline import train_candidates
from ml.scoring import score
from ml.stacking import (
    BtydView,
    btyd_summary,
    horizon_ratios,
    seasonal_margin,
    stack_btyd,
    with_btyd_features,
)
from ml.training import CHURN, LTV, TrainingConfig
from tests.ml.examples import simulate_tables, write_tables

HORIZON = 90
SHORT = 30


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(tmp_path_factory.mktemp("seasonal") / "warehouse.duckdb"))
    write_tables(connection, simulate_tables(customers=1500, cutoffs=6, horizon_days=HORIZON))
    yield connection
    connection.close()


def _write_exposures(con: duckdb.DuckDBPyConnection, exposures: dict) -> None:
    con.execute(f"create or replace table {SEASONAL_EXPOSURE_TABLE} "
                "(cutoff_date date, horizon_days integer, seasonal_exposure double)")  # fmt: skip
    con.executemany(
        f"insert into {SEASONAL_EXPOSURE_TABLE} values (?, ?, ?)",
        [(cutoff, days, value) for (cutoff, days), value in exposures.items()],
    )


def _windows(con: duckdb.DuckDBPyConnection) -> dict:
    """Every training window and the scoring cutoff's main and short window, the latest training cutoff's
    at 1.4 (a holiday season) and the scoring cutoff's at 0.8, the others at 1."""
    training, scoring = load_training_examples(con), load_scoring_features(con)
    (as_of,) = scoring.cutoffs
    exposures = {(cutoff, HORIZON): 1.0 for cutoff in training.cutoffs}
    exposures[(training.validation_cutoff, HORIZON)] = 1.4
    exposures[(as_of, HORIZON)] = 0.8
    exposures[(as_of, SHORT)] = 0.5
    return exposures


@pytest.fixture
def exposed(con) -> Iterator[dict]:
    exposures = _windows(con)
    _write_exposures(con, exposures)
    yield exposures
    con.execute(f"drop table {SEASONAL_EXPOSURE_TABLE}")


def test_the_loaders_attach_the_table(con, exposed) -> None:
    training, scoring = load_training_examples(con), load_scoring_features(con)
    assert dict(training.seasonal_exposures) == exposed == dict(scoring.seasonal_exposures)
    assert training.exposure(training.validation_cutoff, HORIZON) == 1.4
    assert scoring.exposure(scoring.cutoffs[0], SHORT) == 0.5
    # A frame with other rows keeps them (the short window's subsets, the ablations).
    assert training.with_rows(training.rows.head(10)).exposure(training.validation_cutoff, HORIZON) == 1.4


def test_without_the_table_no_window_is_adjusted(con) -> None:
    frame = load_training_examples(con)
    assert frame.seasonal_exposures == {}
    assert frame.exposure(frame.validation_cutoff, 365) == 1.0


def test_a_window_the_table_lacks_is_an_error_naming_it(con, exposed) -> None:
    frame = load_scoring_features(con)
    with pytest.raises(FrameError, match=rf"{SEASONAL_EXPOSURE_TABLE} has no 45-day window at cutoff"):
        frame.exposure(frame.cutoffs[0], 45)


@pytest.mark.parametrize("bad", [None, -0.5, float("nan")])
def test_a_missing_or_negative_exposure_is_an_error(con, bad) -> None:
    exposures = _windows(con)
    exposures[next(iter(exposures))] = bad
    _write_exposures(con, exposures)
    try:
        with pytest.raises(FrameError, match=r"ml_seasonal_exposure.seasonal_exposure is .* for the 90-day"):
            load_training_examples(con)
    finally:
        con.execute(f"drop table {SEASONAL_EXPOSURE_TABLE}")


def _at(frame: ExampleFrame, cutoff) -> np.ndarray:
    return (frame.rows["cutoff_date"] == np.datetime64(cutoff)).to_numpy()


def test_stacking_forecasts_each_window_for_its_effective_days(con, exposed) -> None:
    training = load_training_examples(con)
    plain = stack_btyd(replace(training, seasonal_exposures={}), HORIZON)
    stacked = stack_btyd(training, HORIZON)
    validation = training.validation_cutoff
    at_validation = _at(stacked, validation)
    # The holiday window: the same fit's forecast for 1.4 x 90 days.
    view = BtydView.fit(stacked.rows.loc[at_validation], seed=validation.timetuple().tm_yday)
    np.testing.assert_allclose(
        stacked.rows.loc[at_validation, "f_stack_bgnbd_purchases"], view.purchases(1.4 * HORIZON), rtol=1e-6
    )
    no_purchase = stacked.rows.loc[at_validation, "f_stack_bgnbd_no_purchase"]
    np.testing.assert_allclose(no_purchase, view.no_purchase(1.4 * HORIZON), rtol=1e-6)
    assert (
        stacked.rows.loc[at_validation, "f_stack_bgnbd_purchases"]
        > plain.rows.loc[at_validation, "f_stack_bgnbd_purchases"]
    ).all()
    # Windows at exposure 1 are forecast as before.
    np.testing.assert_array_equal(
        stacked.rows.loc[~at_validation, "f_stack_bgnbd_purchases"],
        plain.rows.loc[~at_validation, "f_stack_bgnbd_purchases"],
    )


def test_horizon_ratios_map_between_effective_windows(con, exposed) -> None:
    scoring = load_scoring_features(con)
    churn, ltv = horizon_ratios(scoring, SHORT, HORIZON)
    view = BtydView.fit(scoring.rows)
    # 30 days at 0.5 carry 15 average days, 90 at 0.8 carry 72.
    np.testing.assert_allclose(ltv, view.purchases(72.0) / view.purchases(15.0), rtol=1e-9)
    expected_churn = np.clip(view.no_purchase(72.0) / view.no_purchase(15.0), 0, 1)
    np.testing.assert_allclose(churn, expected_churn, rtol=1e-9)
    _, plain_ltv = horizon_ratios(replace(scoring, seasonal_exposures={}), SHORT, HORIZON)
    assert (ltv > plain_ltv).all()  # the short window is the slower season: more of the horizon is ahead


def test_the_ltv_margin_is_the_log_of_each_windows_exposure(con, exposed) -> None:
    training = load_training_examples(con)
    margin = seasonal_margin(training, LTV)
    assert margin is not None
    at_validation = _at(training, training.validation_cutoff)
    np.testing.assert_allclose(margin[at_validation], np.log(1.4))
    np.testing.assert_array_equal(margin[~at_validation], 0.0)
    assert seasonal_margin(training, CHURN) is None
    assert seasonal_margin(replace(training, seasonal_exposures={}), LTV) is None
    # A scoring frame stacked for the short window is scored for it: its margin is the short window's.
    short_scoring = stack_btyd(load_scoring_features(con), SHORT)
    assert short_scoring.horizon_days == SHORT
    np.testing.assert_allclose(seasonal_margin(short_scoring, LTV), np.log(0.5))


def test_the_production_ltv_model_trains_and_scores_on_the_seasonal_margin(con, exposed, tmp_path) -> None:
    config = TrainingConfig(max_rounds=30, early_stopping_rounds=5, learning_rate=0.3, max_depth=3)
    candidates = train_candidates(con, tmp_path, config=config)
    assert candidates[LTV].metadata.base_margin == registry.SEASONAL_MARGIN
    assert candidates[CHURN].metadata.base_margin == registry.NO_MARGIN
    assert registry.load_metadata(tmp_path, LTV, candidates[LTV].metadata.version).base_margin == (
        registry.SEASONAL_MARGIN
    )
    for kind in (CHURN, LTV):
        registry.activate(tmp_path, kind, candidates[kind].metadata.version)
    scoring = with_btyd_features(load_scoring_features(con))
    (as_of,) = scoring.cutoffs
    # The same people and features, the scoring window twice as busy: twice the spend, the same churn.
    busier = replace(scoring, seasonal_exposures={**scoring.seasonal_exposures, (as_of, HORIZON): 1.6})
    ltv, busier_ltv = (score(frame, tmp_path, LTV).frame["score"].to_numpy() for frame in (scoring, busier))
    np.testing.assert_allclose(busier_ltv, 2 * ltv, rtol=1e-5)
    np.testing.assert_array_equal(
        score(scoring, tmp_path, CHURN).frame["score"], score(busier, tmp_path, CHURN).frame["score"]
    )


def _write_clock(con: duckdb.DuckDBPyConnection, first_day, index: np.ndarray) -> None:
    """ml_seasonal_clock from ``first_day``, one row per day with the given index and its running total."""
    days = pd.date_range(first_day, periods=index.size, freq="D")
    clock = np.concatenate([[0.0], np.cumsum(index)[:-1]])
    table = pd.DataFrame({"clock_date": days.date, "seasonal_index": index, "seasonal_clock": clock})
    con.register("clock_rows", table)
    con.execute(f"create or replace table {SEASONAL_CLOCK_TABLE} as select * from clock_rows")
    con.unregister("clock_rows")


def _history_days(con: duckdb.DuckDBPyConnection) -> tuple[pd.Timestamp, int]:
    """The earliest first purchase of any row and the days from it to the as-of."""
    training, scoring = load_training_examples(con), load_scoring_features(con)
    rows = pd.concat([training.rows, scoring.rows])
    first = (pd.to_datetime(rows["cutoff_date"]) - pd.to_timedelta(rows["btyd_t"], unit="D")).min()
    return first, (pd.Timestamp(scoring.cutoffs[0]) - first).days + 1


@pytest.fixture
def busy_second_half(con) -> Iterator[SeasonalClock]:
    """A clock whose later half of the history is twice as busy as its first half."""
    first, days = _history_days(con)
    index = np.where(np.arange(days) < days // 2, 0.5, 1.0)
    _write_clock(con, first, index)
    clock = load_training_examples(con).seasonal_clock
    assert clock is not None
    yield clock
    con.execute(f"drop table {SEASONAL_CLOCK_TABLE}")


def test_the_clock_counts_average_days_and_calendar_days_outside_it() -> None:
    clock = SeasonalClock(pd.Timestamp("2025-01-01").date(), np.array([0.0, 1.0, 3.0, 3.5]))
    start = np.array(["2025-01-01", "2024-12-30", "2025-01-02", "2025-01-03"], dtype="datetime64[D]")
    end = np.array(["2025-01-04", "2025-01-02", "2025-01-06", "2025-01-03"], dtype="datetime64[D]")
    # Inside: readings differ; two days before the first reading count 2; after the last, 1 per day.
    np.testing.assert_array_equal(clock.average_days(start, end), [3.5, 3.0, 4.5, 0.0])


def test_the_btyd_history_is_measured_on_the_clock(con, busy_second_half) -> None:
    training = load_training_examples(con)
    rows = training.rows
    x, t_x, big_t, m = btyd_summary(rows, training.seasonal_clock)
    calendar = btyd_summary(rows)
    np.testing.assert_array_equal(x, calendar[0])
    np.testing.assert_array_equal(m, calendar[3])
    # By hand: half a day per day before the midpoint, a whole day after it.
    first_clock_day, days = _history_days(con)
    midpoint = first_clock_day + pd.Timedelta(days=days // 2)

    def average(start: pd.Series, end: pd.Series) -> np.ndarray:
        early = (np.minimum(end, midpoint) - np.minimum(start, midpoint)).dt.days
        late = (np.maximum(end, midpoint) - np.maximum(start, midpoint)).dt.days
        return (0.5 * early + late).to_numpy(dtype=np.float64)

    cutoff = pd.to_datetime(rows["cutoff_date"])
    first = cutoff - pd.to_timedelta(rows["btyd_t"], unit="D")
    last = first + pd.to_timedelta(rows["btyd_recency"], unit="D")
    np.testing.assert_allclose(big_t, average(first, cutoff))
    np.testing.assert_allclose(t_x, average(first, last))
    assert (big_t < calendar[2]).any() and (t_x <= big_t).all()
    # The stacked view is fitted on that history, and so are the horizon ratios.
    validation = training.validation_cutoff
    at_validation = _at(training, validation)
    stacked = stack_btyd(training, HORIZON)
    view = BtydView.fit(
        training.rows.loc[at_validation], seed=validation.timetuple().tm_yday, clock=training.seasonal_clock
    )
    np.testing.assert_allclose(
        stacked.rows.loc[_at(stacked, validation), "f_stack_bgnbd_purchases"],
        view.purchases(HORIZON),
        rtol=1e-6,
    )
    calendar_stacked = stack_btyd(replace(training, seasonal_clock=None), HORIZON)
    assert not np.allclose(
        stacked.rows["f_stack_bgnbd_purchases"], calendar_stacked.rows["f_stack_bgnbd_purchases"]
    )
    scoring = load_scoring_features(con)
    _, ltv = horizon_ratios(scoring, SHORT, HORIZON)
    clocked = BtydView.fit(scoring.rows, clock=scoring.seasonal_clock)
    np.testing.assert_allclose(ltv, clocked.purchases(HORIZON) / clocked.purchases(SHORT), rtol=1e-9)


def test_a_clock_of_calendar_days_changes_nothing(con) -> None:
    # Without a year of history (CDNOW) every index is 1: the same summary, to the bit.
    first, days = _history_days(con)
    _write_clock(con, first, np.ones(days))
    try:
        training = load_training_examples(con)
        assert training.seasonal_clock is not None
        for clocked, calendar in zip(
            btyd_summary(training.rows, training.seasonal_clock), btyd_summary(training.rows), strict=True
        ):
            np.testing.assert_array_equal(clocked, calendar)
    finally:
        con.execute(f"drop table {SEASONAL_CLOCK_TABLE}")


def test_without_the_clock_table_the_history_is_in_calendar_days(con) -> None:
    assert load_training_examples(con).seasonal_clock is None
    assert load_scoring_features(con).seasonal_clock is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("delete from {table} where clock_date = (select min(clock_date) + 3 from {table})",
         r"must list consecutive days, one row each: \S+ is followed by"),
        ("update {table} set seasonal_index = -1 where clock_date = (select min(clock_date) + 5 "
         "from {table})",
         r"has seasonal_index -1.0 and seasonal_clock .* on \S+: the index must be a number >= 0"),
        ("update {table} set seasonal_clock = 0 where clock_date = (select max(clock_date) from {table})",
         r"seasonal_clock runs backwards after \S+"),
    ],
)  # fmt: skip
def test_a_broken_clock_is_an_error_naming_the_table(con, change, message) -> None:
    first, days = _history_days(con)
    _write_clock(con, first, np.ones(days))
    con.execute(change.format(table=SEASONAL_CLOCK_TABLE))
    try:
        with pytest.raises(FrameError, match=rf"^{re.escape(SEASONAL_CLOCK_TABLE)}[ .]{message}"):
            load_scoring_features(con)
    finally:
        con.execute(f"drop table {SEASONAL_CLOCK_TABLE}")
