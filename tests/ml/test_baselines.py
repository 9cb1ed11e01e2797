"""Baselines on the validation rows are exactly the ml.btyd models and heuristics, for every customer."""

from __future__ import annotations

import numpy as np
import pytest

from ml import heuristics
from ml.baselines import BASELINES, predict_baselines
from ml.btyd import (
    conditional_expected_spend,
    expected_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    fit_pareto_nbd,
    probability_no_purchase,
)
from tests.ml.examples import simulate_tables


def test_baselines_match_the_btyd_library_and_heuristics() -> None:
    rows = simulate_tables(customers=800, cutoffs=1).training
    x, t_x, big_t, m = (rows[c].to_numpy(dtype=float) for c in ("btyd_frequency", "btyd_recency", "btyd_t",
                                                                "btyd_monetary_value"))  # fmt: skip
    predictions = predict_baselines(rows, 90)
    assert set(predictions.churn) == set(BASELINES) and not predictions.unavailable
    gg = fit_gamma_gamma(x[x > 0], m[x > 0])
    spend = conditional_expected_spend(gg, x, m)
    for name, fit in (("bg_nbd", fit_bgnbd), ("pareto_nbd", fit_pareto_nbd)):
        params = fit(x, t_x, big_t)
        np.testing.assert_allclose(
            predictions.churn[name], probability_no_purchase(params, 90, x, t_x, big_t)
        )
        np.testing.assert_allclose(
            predictions.ltv[name], expected_purchases(params, 90, x, t_x, big_t) * spend
        )
    np.testing.assert_allclose(
        predictions.churn["recency_heuristic"], heuristics.recency_churn_score(t_x, big_t)
    )
    np.testing.assert_allclose(
        predictions.ltv["frequency_heuristic"], heuristics.frequency_rate_ltv(x, big_t, m, 90)
    )
    assert (
        (predictions.churn["frequency_heuristic"] >= 0) & (predictions.churn["frequency_heuristic"] <= 1)
    ).all()


def test_a_repeat_buyer_with_zero_net_repeat_spend_gets_the_population_spend() -> None:
    rows = simulate_tables(customers=800, cutoffs=1).training
    repeat = rows.index[rows["btyd_frequency"] > 0][0]
    rows.loc[repeat, "btyd_monetary_value"] = 0.0  # fully refunded repeat orders
    predictions = predict_baselines(rows, 90)
    assert np.isfinite(predictions.ltv["pareto_nbd"]).all()
    assert predictions.ltv["pareto_nbd"][repeat] > 0
    with pytest.raises(ValueError):  # the library itself refuses the raw value: the baseline guards it
        conditional_expected_spend(fit_gamma_gamma([1.0, 2.0], [10.0, 20.0]), [1.0], [0.0])
