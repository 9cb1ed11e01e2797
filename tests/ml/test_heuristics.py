"""The recency/frequency heuristic baselines."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from ml import heuristics


def test_time_since_last_purchase() -> None:
    assert heuristics.time_since_last_purchase([10.0, 0.0, 40.0], [40.0, 25.0, 40.0]) == pytest.approx(
        [30.0, 25.0, 0.0]
    )


def test_recency_churn_score_is_the_share_of_life_spent_silent() -> None:
    score = heuristics.recency_churn_score(
        pd.Series([10.0, 0.0, 40.0, 0.0, 30.0]), pd.Series([40.0, 25.0, 40.0, 0.0, 300.0])
    )
    assert isinstance(score, np.ndarray)
    # Silent for 3/4 of their life; one-time buyer (all of it); just bought; first seen today; long-lived
    # customer silent for 270 of 300 days.
    assert score == pytest.approx([0.75, 1.0, 0.0, 0.0, 0.9])


def test_recency_churn_score_orders_by_silence_relative_to_tenure() -> None:
    recency = np.array([35.0, 20.0, 5.0])
    assert np.all(np.diff(heuristics.recency_churn_score(recency, 40.0)) > 0)


def test_frequency_rate_forecasts() -> None:
    frequency, T, spend = [4, 0, 2, 3], [40.0, 10.0, 20.0, 0.0], [25.0, 0.0, 10.0, 5.0]
    # 4 repeat purchases in 40 weeks: 0.1 a week, 1.3 in 13 weeks; T = 0 has no rate to extrapolate.
    assert heuristics.frequency_rate_purchases(frequency, T, 13.0) == pytest.approx([1.3, 0.0, 1.3, 0.0])
    assert heuristics.frequency_rate_ltv(frequency, T, spend, 13.0) == pytest.approx([32.5, 0.0, 13.0, 0.0])
    # Horizons may differ per customer.
    per_customer = heuristics.frequency_rate_ltv(frequency, T, spend, [13.0, 1.0, 26.0, 1.0])
    assert per_customer == pytest.approx([32.5, 0.0, 26.0, 0.0])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: heuristics.recency_churn_score([50.0], [40.0]), "recency must not exceed T"),
        (lambda: heuristics.recency_churn_score([1.0, 2.0], [40.0, 40.0, 40.0]), "must have the same length"),
        (lambda: heuristics.time_since_last_purchase([], []), "no customers"),
        (lambda: heuristics.frequency_rate_purchases([-1], [40.0], 10.0), "frequency must be >= 0"),
        (lambda: heuristics.frequency_rate_purchases([1], [-40.0], 10.0), "T must be >= 0"),
        (lambda: heuristics.frequency_rate_purchases([1], [40.0], -10.0), "the horizon t must be >= 0"),
        (lambda: heuristics.frequency_rate_ltv([1], [40.0], [0.0], 10.0), "monetary_value must be > 0"),
        (lambda: heuristics.frequency_rate_ltv([1], [40.0], [np.nan], 10.0), "monetary_value contains NaN"),
    ],
)
def test_bad_input_is_rejected(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        call()  # type: ignore[operator]
