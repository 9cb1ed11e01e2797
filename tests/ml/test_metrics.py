"""Metrics against cases small enough to compute by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml import metrics


def test_auc_counts_ordered_pairs_and_ties_as_half() -> None:
    # Positives 0.35 and 0.8 vs negatives 0.1 and 0.4: 0.35 beats one negative, 0.8 both -> 3 of 4 pairs.
    assert metrics.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert metrics.roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    assert math.isnan(metrics.roc_auc([1, 1], [0.2, 0.3]))


def test_roc_curve_runs_from_origin_to_one() -> None:
    fpr, tpr = metrics.roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert fpr.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert tpr.tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]
    assert np.trapezoid(tpr, fpr) == pytest.approx(0.75)


def test_average_precision() -> None:
    # Ranked: 1, 0, 1, 0 -> precision 1 at the first recall step, 2/3 at the second.
    assert metrics.average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_brier_and_rmse() -> None:
    assert metrics.brier_score([0, 1], [0.2, 0.6]) == pytest.approx((0.04 + 0.16) / 2)
    assert metrics.rmse([0, 0], [3, 4]) == pytest.approx(math.sqrt(12.5))


def test_lift_at_10_percent_and_ties_pro_rata() -> None:
    y = [1, 0, 0, 1, 0, 0, 1, 0, 0, 0]
    score = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]
    assert metrics.lift_at(y, score, 0.1) == pytest.approx(1 / 0.3)
    # All tied: the top row is a churner with probability 0.3, the base rate, so lift is 1.
    assert metrics.lift_at(y, [0.5] * 10, 0.1) == pytest.approx(1.0)
    # Top 20% = rows 0.9 and 0.8 -> 1 churner in 2 rows over a 0.3 base rate.
    assert metrics.lift_at(y, score, 0.2) == pytest.approx(0.5 / 0.3)


def test_calibration_table_bins_by_predicted_probability() -> None:
    table = metrics.calibration_table([0, 0, 1, 0], [0.1, 0.2, 0.7, 0.9], bins=2)
    assert [(b.rows, b.mean_predicted, b.observed_rate) for b in table] == [
        (2, pytest.approx(0.15), 0.0),
        (2, pytest.approx(0.8), 0.5),
    ]


def test_spearman() -> None:
    # Ranks [1, 2, 3] vs [1, 3, 2]: 1 - 6 * 2 / (3 * 8) = 0.5.
    assert metrics.spearman([1, 2, 3], [10, 30, 20]) == pytest.approx(0.5)
    assert metrics.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_normalized_gini_perfect_reversed_and_random() -> None:
    actual = [0, 0, 1]
    assert metrics.normalized_gini(actual, [0.1, 0.2, 0.9]) == pytest.approx(1.0)
    # Reversed: the cumulative gains curve stays at 0 until the last third -> Gini -2/3 over best 2/3.
    assert metrics.normalized_gini(actual, [0.9, 0.2, 0.1]) == pytest.approx(-1.0)
    assert metrics.normalized_gini(actual, [1, 1, 1]) == pytest.approx(0.0)
    # Half way: actual [0, 1, 2], predicted puts 1 first, then 2, then 0.
    # Gains at 1/3, 2/3, 1: 1/3, 1, 1 -> area 1/18 + 2/9 + 1/3 = 11/18; Gini 2 (11/18 - 1/2) = 2/9.
    # Best ordering (2, 1, 0): gains 2/3, 1, 1 -> area 1/9 + 5/18 + 1/3 = 13/18; Gini 4/9. Ratio 0.5.
    assert metrics.normalized_gini([0, 1, 2], [1, 3, 2]) == pytest.approx(0.5)


def test_top_20_capture() -> None:
    actual = [10, 0, 0, 0, 0, 5, 0, 0, 0, 5]
    assert metrics.top_share_capture(actual, [9, 1, 1, 1, 1, 8, 1, 1, 1, 1], 0.2) == pytest.approx(15 / 20)
    assert metrics.top_share_capture(actual, [1] * 10, 0.2) == pytest.approx(0.2)


def test_decile_table_and_mape() -> None:
    predicted = np.arange(1.0, 11.0)
    actual = predicted * 1.1
    table = metrics.decile_table(actual, predicted)
    assert [row.decile for row in table] == list(range(1, 11))
    assert table[0].mean_predicted == 10.0 and table[0].mean_actual == pytest.approx(11.0)
    assert metrics.decile_mape(actual, predicted) == pytest.approx(0.1 / 1.1)
    # Deciles whose actual mean is 0 cannot carry a percentage error and are left out.
    assert metrics.decile_mape([0, 2], [1, 1]) == pytest.approx(0.5)


def test_ltv_metrics_total_ratio() -> None:
    result = metrics.ltv_metrics([0, 10, 30], [5, 10, 25])
    assert result.predicted_total == 40 and result.actual_total == 40 and result.total_ratio == 1.0
    assert result.as_dict()["total_ratio"] == 1.0


def test_churn_metrics_ceiling() -> None:
    result = metrics.churn_metrics([1, 1, 0, 1] * 5, np.linspace(0, 1, 20))
    assert result.base_rate == pytest.approx(0.75)
    assert result.lift_at_10_ceiling == pytest.approx(1 / 0.75)


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        metrics.roc_auc([0, 1], [0.1])
    with pytest.raises(ValueError, match="0 or 1"):
        metrics.roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="finite"):
        metrics.rmse([0.0, np.nan], [0.0, 0.0])
