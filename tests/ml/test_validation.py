"""Bad input fails loudly with a message that says what is wrong, at every entry point."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from ml.btyd import (
    BgNbdParams,
    GammaGammaParams,
    ParetoNbdParams,
    conditional_expected_spend,
    expected_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    fit_pareto_nbd,
    log_likelihood,
    predicted_ltv,
    probability_alive,
    probability_no_purchase,
)

BGNBD = BgNbdParams(0.243, 4.414, 0.793, 2.426)
PARETO = ParetoNbdParams(0.553, 10.578, 0.606, 11.669)
GAMMA_GAMMA = GammaGammaParams(6.25, 3.74, 15.44)

HistoryFunction = Callable[[object, object, object], object]

# Every function that takes (frequency, recency, T), with its other arguments bound.
HISTORY_FUNCTIONS: dict[str, HistoryFunction] = {
    "fit_bgnbd": fit_bgnbd,
    "fit_pareto_nbd": fit_pareto_nbd,
    "bgnbd probability_alive": lambda x, t_x, T: probability_alive(BGNBD, x, t_x, T),
    "pareto probability_alive": lambda x, t_x, T: probability_alive(PARETO, x, t_x, T),
    "bgnbd expected_purchases": lambda x, t_x, T: expected_purchases(BGNBD, 10.0, x, t_x, T),
    "pareto expected_purchases": lambda x, t_x, T: expected_purchases(PARETO, 10.0, x, t_x, T),
    "bgnbd probability_no_purchase": lambda x, t_x, T: probability_no_purchase(BGNBD, 10.0, x, t_x, T),
    "pareto probability_no_purchase": lambda x, t_x, T: probability_no_purchase(PARETO, 10.0, x, t_x, T),
    "bgnbd log_likelihood": lambda x, t_x, T: log_likelihood(BGNBD, x, t_x, T),
    "pareto log_likelihood": lambda x, t_x, T: log_likelihood(PARETO, x, t_x, T),
    "predicted_ltv": lambda x, t_x, T: predicted_ltv(BGNBD, GAMMA_GAMMA, 10.0, x, t_x, T, [20.0] * len(x)),
}

BAD_HISTORIES = [
    (([], [], []), "no customers"),
    (([1, -1], [3.0, 0.0], [5.0, 5.0]), "frequency must be >= 0"),
    (([1.5, 2], [3.0, 4.0], [5.0, 5.0]), "frequency must be a whole number"),
    (
        ([2, 1], [3.0, 6.0], [5.0, 5.0]),
        "recency must not exceed T: customer at position 1 has recency 6.0 > T 5.0",
    ),
    (([1, 1], [-1.0, 3.0], [5.0, 5.0]), "recency must be >= 0"),
    (([0, 1], [0.0, 3.0], [-5.0, 5.0]), "T must be >= 0"),
    (([1, 1], [np.nan, 3.0], [5.0, 5.0]), "recency contains NaN or infinite values"),
    (([1, 1], [3.0, 3.0], [5.0, np.inf]), "T contains NaN or infinite values"),
    (([1, 1, 2], [3.0, 3.0], [5.0, 5.0]), "the summary columns must have the same length"),
    (([1, 0], [3.0, 2.0], [5.0, 5.0]), "recency must be 0 when frequency is 0: customer at position 1"),
    (([[1, 1]], [[3.0, 3.0]], [[5.0, 5.0]]), "frequency must be a scalar or one-dimensional"),
    ((["a", "b"], [3.0, 3.0], [5.0, 5.0]), "frequency must be numeric"),
]


@pytest.mark.parametrize("function", HISTORY_FUNCTIONS.values(), ids=HISTORY_FUNCTIONS.keys())
@pytest.mark.parametrize(("columns", "message"), BAD_HISTORIES, ids=[m for _, m in BAD_HISTORIES])
def test_bad_histories_are_rejected(
    function: HistoryFunction, columns: tuple[object, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        function(*columns)


def test_recency_a_hair_above_t_is_float_noise_not_an_error() -> None:
    # Recency and T computed by two separate date differences can disagree in the last bit.
    T = 38.857142857142854
    assert float(probability_alive(PARETO, 3, T * (1 + 1e-15), T)) == pytest.approx(
        float(probability_alive(PARETO, 3, T, T))
    )


@pytest.mark.parametrize("fit", [fit_bgnbd, fit_pareto_nbd])
def test_fitting_needs_repeat_buyers(fit: Callable[..., object]) -> None:
    with pytest.raises(ValueError, match="needs at least 1 customer"):
        fit([0, 0, 0], [0.0, 0.0, 0.0], [5.0, 10.0, 20.0])


def test_a_degenerate_fit_warns() -> None:
    # Every repeat buyer bought on the last day: no sign of dropout, so dropout (a, b) runs off to a bound.
    rng = np.random.default_rng(0)
    T = rng.uniform(20, 40, 300)
    frequency = rng.poisson(0.1 * T).astype(float)
    with pytest.warns(RuntimeWarning, match=r"parameters \[.*\] hit the search bound"):
        fit_bgnbd(frequency, np.where(frequency > 0, T, 0.0), T)


@pytest.mark.parametrize(
    ("frequency", "monetary_value", "message"),
    [
        ([1, 2], [10.0, 0.0], "monetary_value must be > 0 for repeat buyers: customer at position 1"),
        ([1, 0], [10.0, -1.0], "monetary_value must be >= 0"),
        ([1, 2], [10.0, np.nan], "monetary_value contains NaN"),
        ([-1, 2], [10.0, 5.0], "frequency must be >= 0"),
        ([1, 2, 3], [10.0, 5.0], "the summary columns must have the same length"),
    ],
)
def test_bad_spend_is_rejected(frequency: list[float], monetary_value: list[float], message: str) -> None:
    for function in (
        fit_gamma_gamma,
        lambda x, m: conditional_expected_spend(GAMMA_GAMMA, x, m),
        lambda x, m: predicted_ltv(PARETO, GAMMA_GAMMA, 4.0, x, [1.0] * len(x), [5.0] * len(x), m),
    ):
        with pytest.raises(ValueError, match=re.escape(message)):
            function(frequency, monetary_value)


def test_gamma_gamma_needs_two_repeat_buyers() -> None:
    with pytest.raises(ValueError, match="needs at least 2 customer"):
        fit_gamma_gamma([0, 3, 0], [0.0, 12.0, 0.0])


def test_one_time_buyers_are_ignored_by_the_spend_fit() -> None:
    # Their monetary_value is 0 by definition; whatever else they carry must not move the fit.
    frequency = pd.Series([1, 2, 3, 1, 4, 2, 1, 5] * 20)
    spend = pd.Series([20.0, 35.0, 12.0, 80.0, 25.0, 40.0, 15.0, 30.0] * 20)
    alone = fit_gamma_gamma(frequency, spend)
    padded = fit_gamma_gamma(
        pd.concat([frequency, pd.Series([0] * 50)]), pd.concat([spend, pd.Series([0.0] * 50)])
    )
    assert (padded.p, padded.q, padded.gamma, padded.log_likelihood) == pytest.approx(
        (alone.p, alone.q, alone.gamma, alone.log_likelihood)
    )


def test_infinite_population_mean_spend_is_an_error_only_where_it_matters() -> None:
    heavy_tailed = GammaGammaParams(p=2.0, q=0.8, gamma=10.0)
    with pytest.raises(ValueError, match="q <= 1"):
        conditional_expected_spend(heavy_tailed, [0, 2], [0.0, 30.0])
    # Repeat buyers still have a finite posterior mean: p (gamma + x m) / (p x + q - 1).
    assert conditional_expected_spend(heavy_tailed, [2], [30.0]) == pytest.approx([2.0 * (10.0 + 60.0) / 3.8])


@pytest.mark.parametrize(
    ("t", "message"),
    [
        (-1.0, "the horizon t must be >= 0"),
        ([1.0, 2.0, 3.0], "the horizon t must be a scalar or have one value per customer"),
        (np.nan, "t contains NaN"),
    ],
)
def test_bad_horizons_are_rejected(t: object, message: str) -> None:
    for params in (BGNBD, PARETO):
        for function in (expected_purchases, probability_no_purchase):
            with pytest.raises(ValueError, match=re.escape(message)):
                function(params, t, [1, 0], [3.0, 0.0], [5.0, 5.0])


@pytest.mark.parametrize(
    ("factory", "values"),
    [
        (BgNbdParams, (0.2, -4.0, 0.8, 2.4)),
        (BgNbdParams, (0.0, 4.0, 0.8, 2.4)),
        (ParetoNbdParams, (0.5, 10.0, math.nan, 11.0)),
        (ParetoNbdParams, (0.5, math.inf, 0.6, 11.0)),
        (GammaGammaParams, (6.0, 3.7, -15.0)),
    ],
)
def test_parameters_must_be_positive_and_finite(factory: type, values: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="parameters must be finite and > 0"):
        factory(*values)


def test_parameters_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        BGNBD.r = 1.0  # type: ignore[misc]


def test_predictions_need_a_transaction_model() -> None:
    with pytest.raises(TypeError, match="expected BgNbdParams or ParetoNbdParams, got GammaGammaParams"):
        expected_purchases(GAMMA_GAMMA, 10.0, [1], [3.0], [5.0])  # type: ignore[arg-type]
