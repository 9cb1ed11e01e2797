"""Reasons come from pred_contribs, and contributions plus bias reproduce the raw margin."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xgboost as xgb

from ml import explain

FEATURES = ("f_a", "f_b", "f_c", "f_d", "btyd_t")


@pytest.fixture(scope="module")
def booster_and_matrix() -> tuple[xgb.Booster, np.ndarray]:
    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(400, len(FEATURES))).astype(np.float32)
    matrix[rng.random(matrix.shape) < 0.1] = np.nan  # missing values take the default branch
    label = np.nan_to_num(matrix[:, 0]) + np.nan_to_num(matrix[:, 1]) * np.nan_to_num(matrix[:, 2]) > 0
    data = xgb.DMatrix(matrix, label=label.astype(float), feature_names=list(FEATURES))
    params = {"objective": "binary:logistic", "tree_method": "hist", "nthread": 2, "max_depth": 4}
    return xgb.train(params, data, num_boost_round=30), matrix


@pytest.mark.parametrize("exact", [True, False])
def test_contributions_plus_bias_equal_the_raw_margin(booster_and_matrix, exact: bool) -> None:
    booster, matrix = booster_and_matrix
    contribs = explain.contributions(booster, matrix, FEATURES, exact=exact)
    assert contribs.shape == (matrix.shape[0], len(FEATURES) + 1)
    margin = booster.predict(xgb.DMatrix(matrix, feature_names=list(FEATURES)), output_margin=True)
    np.testing.assert_allclose(contribs.sum(axis=1), margin, rtol=1e-4, atol=1e-4)


def test_a_base_margin_goes_into_the_bias(booster_and_matrix) -> None:
    booster, matrix = booster_and_matrix
    offset = np.linspace(-1.0, 1.0, matrix.shape[0])
    plain = explain.contributions(booster, matrix, FEATURES, exact=True)
    shifted = explain.contributions(booster, matrix, FEATURES, exact=True, base_margin=offset)
    np.testing.assert_allclose(shifted[:, :-1], plain[:, :-1], rtol=1e-6, atol=1e-6)
    margin = booster.predict(
        xgb.DMatrix(matrix, feature_names=list(FEATURES), base_margin=offset), output_margin=True
    )
    np.testing.assert_allclose(shifted.sum(axis=1), margin, rtol=1e-4, atol=1e-4)


def test_reasons_are_the_three_largest_absolute_contributions() -> None:
    contribs = np.array(
        [
            [0.1, -2.0, 0.5, 0.0, 1.0, 9.9],  # last column is the bias and never a reason
            [0.0, 0.0, 0.0, -0.3, 0.2, 0.0],
        ]
    )
    reasons = [json.loads(text) for text in explain.reasons_json(contribs, FEATURES)]
    assert reasons[0] == [
        {"feature": "f_b", "contribution": -2.0},
        {"feature": "btyd_t", "contribution": 1.0},
        {"feature": "f_c", "contribution": 0.5},
    ]
    assert [r["feature"] for r in reasons[1]][:2] == ["f_d", "btyd_t"]
    assert len(reasons[1]) == 3


def test_reasons_of_a_real_model_are_valid_json(booster_and_matrix) -> None:
    booster, matrix = booster_and_matrix
    contribs = explain.contributions(booster, matrix, FEATURES, exact=True)
    for text, row in zip(explain.reasons_json(contribs, FEATURES), contribs, strict=True):
        reasons = json.loads(text)
        assert len(reasons) == 3
        largest = np.sort(np.abs(row[:-1]))[::-1][:3]
        np.testing.assert_allclose([abs(r["contribution"]) for r in reasons], largest, rtol=1e-5)
