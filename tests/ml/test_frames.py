"""The ML tables' contract: what is read, in which order, and clear errors for bad tables."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.frames import (
    FrameError,
    SeasonalClock,
    feature_matrix,
    fingerprint,
    load_scoring_features,
    load_training_examples,
)
from personalize.settings import PROJECT_DIR, Settings, load_settings
from tests.ml.examples import SimulatedTables, simulate_tables, write_tables


@pytest.fixture(scope="module")
def tables() -> SimulatedTables:
    return simulate_tables(customers=300, cutoffs=5)


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    yield connection
    connection.close()


def _with(tables: SimulatedTables, training: pd.DataFrame) -> SimulatedTables:
    return SimulatedTables(training, tables.scoring, tables.horizon_days)


def test_features_are_sorted_f_columns_then_the_btyd_summary(con, tables) -> None:
    write_tables(con, tables)
    examples = load_training_examples(con)
    assert examples.features == (
        "f_email_clicks_90d", "f_net_revenue", "f_orders_90d", "f_sessions_30d",
        "btyd_frequency", "btyd_recency", "btyd_t", "btyd_monetary_value",
    )  # fmt: skip
    assert examples.horizon_days == 90 and len(examples.cutoffs) == 5
    matrix = feature_matrix(examples, examples.features)
    assert matrix.dtype == np.float32 and matrix.shape == (len(tables.training), 8)
    assert np.isnan(matrix[:, 0]).any()  # nulls stay missing for XGBoost
    scoring = load_scoring_features(con)
    assert len(scoring.cutoffs) == 1 and scoring.features == examples.features


def test_fingerprint_changes_with_content_not_row_order(con, tables) -> None:
    write_tables(con, tables)
    examples = load_training_examples(con)
    shuffled = _with(tables, tables.training.sample(frac=1.0, random_state=1))
    changed = tables.training.copy()
    changed.loc[0, "f_net_revenue"] += 1
    write_tables(con, shuffled)
    assert fingerprint(load_training_examples(con)) == fingerprint(examples)
    write_tables(con, _with(tables, changed))
    assert fingerprint(load_training_examples(con)) != fingerprint(examples)


def test_fingerprint_changes_with_the_seasonal_exposures(con, tables) -> None:
    # The exposures change the stacked features and the base margin, so the same rows with other
    # exposures are other training data.
    write_tables(con, tables)
    examples = load_training_examples(con)
    cutoff = examples.cutoffs[0]
    seasonal = replace(examples, seasonal_exposures={(cutoff, examples.horizon_days): 1.2})
    shifted = replace(examples, seasonal_exposures={(cutoff, examples.horizon_days): 1.3})
    assert len({fingerprint(examples), fingerprint(seasonal), fingerprint(shifted)}) == 3
    assert fingerprint(replace(seasonal, seasonal_exposures=dict(seasonal.seasonal_exposures))) == (
        fingerprint(seasonal)
    )


def test_fingerprint_changes_with_the_seasonal_clock(con, tables) -> None:
    # The clock measures the BTYD history the stacked features are fitted on.
    write_tables(con, tables)
    examples = load_training_examples(con)
    start = examples.cutoffs[0]
    clocked = replace(examples, seasonal_clock=SeasonalClock(start, np.array([0.0, 1.0, 2.0])))
    faster = replace(examples, seasonal_clock=SeasonalClock(start, np.array([0.0, 1.5, 2.0])))
    later = replace(examples, seasonal_clock=SeasonalClock(examples.cutoffs[1], np.array([0.0, 1.0, 2.0])))
    assert len({fingerprint(frame) for frame in (examples, clocked, faster, later)}) == 4
    same = replace(examples, seasonal_clock=SeasonalClock(start, np.array([0.0, 1.0, 2.0])))
    assert fingerprint(same) == fingerprint(clocked)


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (
            lambda t: t.drop(columns=["btyd_t"]),
            r"ml.ml_training_examples is missing required column\(s\) \['btyd_t'\]",
        ),
        (lambda t: t.assign(label_is_churned=2), "label_is_churned must be 0 or 1, person_id 'p"),
        (lambda t: t.assign(label_net_spend=-1.0), "label_net_spend must be a number >= 0"),
        (lambda t: t.assign(btyd_recency=np.nan), "btyd_recency is null for person_id"),
        (lambda t: pd.concat([t, t.head(1)]), "more than one row for person_id"),
        (lambda t: t[t["cutoff_date"] == t["cutoff_date"].max()], "single cutoff"),
        # 90-day windows 30 days apart: the last three cutoffs leave none that ends by the validation one.
        (
            lambda t: t[t["cutoff_date"] >= sorted(t["cutoff_date"].unique())[-3]],
            r"no training cutoff's 90-day label window ends by the validation cutoff .* ml_cutoff_count, "
            "at least 4",
        ),
        (lambda t: t.assign(f_sessions_30d="many"), "f_sessions_30d must be numeric"),
    ],
)
def test_bad_training_tables_fail_with_the_column_named(con, tables, breakage, message) -> None:
    write_tables(con, _with(tables, breakage(tables.training)))
    with pytest.raises(FrameError, match=message):
        load_training_examples(con)


def test_a_table_with_two_label_windows_reads_one_at_a_time(con, tables) -> None:
    # dbt var ml_short_horizon_days adds a shorter window's rows: the same people and cutoffs here.
    short = tables.training.assign(horizon_days=30, label_is_churned=1, label_net_spend=0.0)
    write_tables(con, _with(tables, pd.concat([tables.training, short], ignore_index=True)))
    main = load_training_examples(con)
    assert main.horizon_days == 90 and len(main.rows) == len(tables.training)
    assert main.rows["label_is_churned"].tolist() != [1.0] * len(main.rows)
    second = load_training_examples(con, horizon_days=30)
    assert second.horizon_days == 30 and len(second.rows) == len(short)
    assert (second.rows["label_is_churned"] == 1).all()
    with pytest.raises(FrameError, match=r"has no 45-day label window \(it holds \[90, 30\]\)"):
        load_training_examples(con, horizon_days=45)


def test_missing_tables_and_features_are_named(con, tables) -> None:
    with pytest.raises(FrameError, match="ml.ml_training_examples does not exist"):
        load_training_examples(con)
    write_tables(con, tables)
    scoring = load_scoring_features(con)
    with pytest.raises(FrameError, match=r"lacks feature column\(s\) \['f_web_new'\]"):
        feature_matrix(scoring, ("f_web_new", "btyd_t"))


def test_model_dir_setting_resolves_like_the_other_paths() -> None:
    assert load_settings({}).model_dir == PROJECT_DIR / "data/models"
    assert (
        load_settings({"PERSONALIZE_MODEL_DIR": "elsewhere/models"}).model_dir
        == PROJECT_DIR / "elsewhere/models"
    )
    assert load_settings({"PERSONALIZE_MODEL_DIR": "/abs/models"}).model_dir.as_posix() == "/abs/models"


def test_the_registry_and_exports_default_to_beside_the_warehouse() -> None:
    """Pointing only PERSONALIZE_DUCKDB_PATH at another warehouse gives it its own registry and exports, so
    the demo's promoted models never score another warehouse's people; explicit settings still win."""
    assert load_settings({}).export_dir == PROJECT_DIR / "data/exports"
    mine = load_settings({"PERSONALIZE_DUCKDB_PATH": "data/mine/warehouse.duckdb"})
    assert (mine.model_dir, mine.export_dir) == (
        PROJECT_DIR / "data/mine/models",
        PROJECT_DIR / "data/mine/exports",
    )
    shared = load_settings(
        {
            "PERSONALIZE_DUCKDB_PATH": "/w/a.duckdb",
            "PERSONALIZE_MODEL_DIR": "/r",
            "PERSONALIZE_EXPORT_DIR": "/e",
        }
    )
    assert (shared.model_dir.as_posix(), shared.export_dir.as_posix()) == ("/r", "/e")
    built = Settings(raw_dir=Path("/raw"), duckdb_path=Path("/w/b.duckdb"))
    assert (built.model_dir.as_posix(), built.export_dir.as_posix()) == ("/w/models", "/w/exports")
