"""Temporal validation is out of time and clear of the validation window, the refit uses the rounds found,
LTV totals are calibrated."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from ml.frames import ExampleFrame, FrameError, feature_matrix, load_training_examples
from ml.training import TrainingConfig, predict, train_model, validation_fit_mask, validation_mask
from tests.ml.examples import simulate_tables, write_tables

FAST = TrainingConfig(max_rounds=40, early_stopping_rounds=5, learning_rate=0.3, max_depth=3)


@pytest.fixture(scope="module")
def examples() -> ExampleFrame:
    con = duckdb.connect()
    # Five cutoffs 30 days apart with 90-day label windows: the first two windows end by the validation
    # cutoff (the fifth), the third and fourth run into its window.
    write_tables(con, simulate_tables(customers=600, cutoffs=5))
    return load_training_examples(con)


def test_validation_predictions_come_from_a_fit_that_never_saw_the_validation_window(examples) -> None:
    trained = train_model(examples, "churn", FAST)
    is_validation = validation_mask(examples)
    assert trained.validation_cutoff == max(examples.cutoffs)
    # Only cutoffs whose label window ends by the validation cutoff train the validation fit; the fixture
    # has overlapping ones too, so training on every earlier cutoff would not pass.
    horizon = timedelta(days=examples.horizon_days)
    clean = tuple(c for c in examples.cutoffs if c + horizon <= trained.validation_cutoff)
    assert trained.validation_fit_cutoffs == clean == examples.cutoffs[:2]
    is_fit = validation_fit_mask(examples)
    assert is_fit.sum() < (~is_validation).sum()
    matrix = feature_matrix(examples, examples.features)
    labels = examples.rows["label_is_churned"].to_numpy(dtype=float)
    # Refit by hand on the clean cutoffs alone for the rounds found: identical predictions.
    earlier = xgb.QuantileDMatrix(
        matrix[is_fit], label=labels[is_fit], feature_names=list(examples.features), max_bin=FAST.max_bin,
    )  # fmt: skip
    by_hand = xgb.train(FAST.xgboost_params("churn"), earlier, num_boost_round=trained.rounds)
    validation = xgb.DMatrix(matrix[is_validation], feature_names=list(examples.features))
    np.testing.assert_allclose(trained.validation_predicted, by_hand.predict(validation), rtol=1e-6)
    np.testing.assert_array_equal(trained.validation_actual, labels[is_validation])
    # The scoring model is the refit on every cutoff, with the same number of rounds.
    assert trained.booster.num_boosted_rounds() == trained.rounds
    assert trained.training_rows == len(examples.rows)


def test_training_refuses_when_every_training_window_overlaps_validation(examples) -> None:
    recent = examples.rows["cutoff_date"] >= pd.Timestamp(examples.cutoffs[2])
    overlapping = ExampleFrame(examples.table, examples.rows.loc[recent], examples.features, 90)
    with pytest.raises(FrameError, match="no training cutoff's 90-day label window ends by the validation"):
        train_model(overlapping, "churn", FAST)


def test_ltv_total_is_calibrated_on_the_validation_window(examples) -> None:
    trained = train_model(examples, "ltv", FAST)
    assert trained.validation_predicted.sum() == pytest.approx(trained.validation_actual.sum(), rel=1e-9)
    assert (trained.validation_predicted >= 0).all()
    raw_total = trained.validation_predicted.sum() / trained.calibration_scale
    assert trained.uncalibrated_total_ratio == pytest.approx(raw_total / trained.validation_actual.sum())


def test_an_ltv_margin_carries_no_level_of_its_own(examples) -> None:
    # XGBoost drops base_score on rows with a base margin; the LTV margin is shifted to the data's level
    # instead, so a margin of 0 everywhere is the model without one, and a constant margin changes nothing.
    matrix = feature_matrix(examples, examples.features)
    plain = train_model(examples, "ltv", FAST)
    expected = predict(plain.booster, matrix, examples.features, "ltv", plain.calibration_scale)
    for constant in (0.0, 3.0):
        offset = np.full(len(examples.rows), constant)
        shifted = train_model(examples, "ltv", FAST, base_margin=offset)
        assert shifted.rounds == plain.rounds
        np.testing.assert_allclose(shifted.validation_predicted, plain.validation_predicted, rtol=1e-4)
        predicted = predict(
            shifted.booster, matrix, examples.features, "ltv", shifted.calibration_scale, base_margin=offset
        )
        np.testing.assert_allclose(predicted, expected, rtol=1e-4)


def test_large_training_sets_are_sampled(examples) -> None:
    trained = train_model(examples, "churn", dataclasses.replace(FAST, max_rounds=3, max_training_rows=500))
    assert trained.training_rows == 500


def test_early_stopping_on_a_sample_still_predicts_every_validation_row(examples) -> None:
    config = dataclasses.replace(FAST, max_rounds=5, max_stopping_rows=50)
    trained = train_model(examples, "churn", config)
    is_validation = validation_mask(examples)
    assert is_validation.sum() > 50
    assert trained.validation_predicted.shape == (int(is_validation.sum()),)
    full = train_model(examples, "churn", dataclasses.replace(config, max_stopping_rows=10**9))
    # Same training rows and 5 rounds (the loss still falls at 5): the stopping sample only decides where
    # to stop, and every validation row gets the prediction of that model.
    assert full.rounds == trained.rounds == 5
    np.testing.assert_allclose(trained.validation_predicted, full.validation_predicted, rtol=1e-6)


def test_parallel_trees_are_averaged_within_a_round(examples) -> None:
    # Trees grown on identical data (no row or column sampling) are identical, so averaging three of
    # them must predict what one tree does; summing them would triple the step.
    replace = dataclasses.replace
    whole = replace(FAST, subsample=1.0, colsample_bytree=1.0)
    labels = examples.rows["label_is_churned"].to_numpy(dtype=float)
    matrix = xgb.DMatrix(
        feature_matrix(examples, examples.features), label=labels, feature_names=list(examples.features)
    )
    one, three = (
        xgb.train(replace(whole, parallel_trees=k).xgboost_params("churn"), matrix, num_boost_round=2)
        for k in (1, 3)
    )
    np.testing.assert_allclose(three.predict(matrix), one.predict(matrix), rtol=1e-5)
    assert len(three.get_dump()) == 3 * len(one.get_dump())
    # train_model keeps the rounds (not the trees) early stopping found for the refit.
    trained = train_model(examples, "churn", replace(FAST, parallel_trees=3))
    assert trained.booster.num_boosted_rounds() == trained.rounds
    assert len(trained.booster.get_dump()) == 3 * trained.rounds
