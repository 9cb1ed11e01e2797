"""Monte Carlo: data drawn from the models' own stories must agree with the models' formulas.

Two kinds of check:
- fitting simulated customers recovers the parameters they were drawn with, within 4 asymptotic standard
  errors (observed information at the MLE);
- the conditional predictions match what simulated customers then do. For any grouping that uses only
  the calibration history, E[outcome - prediction | group] = 0 when the prediction is the true
  conditional expectation, so each group's mean residual is compared to its standard error (|z| < 4).
  With ~16 groups a 4-sigma bound has a false alarm rate well under 1%, and the seed is fixed anyway.
  Each test also shows that a plausible wrong formula fails the same check, so the check has power.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
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
    probability_alive,
    probability_no_purchase,
)
from ml.btyd import bgnbd as bgnbd_module
from ml.btyd import gamma_gamma as gamma_gamma_module
from ml.btyd import pareto_nbd as pareto_module
from tests.ml.simulate import Cohort, simulate_bgnbd, simulate_gamma_gamma, simulate_pareto_nbd
from tests.ml.stats import group_z_scores, log_parameter_standard_errors

# The CDNOW estimates: realistic, with a<1 for BG/NBD and alpha<beta for Pareto/NBD.
BGNBD = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
PARETO = ParetoNbdParams(r=0.553, alpha=10.578, s=0.606, beta=11.669)
# Pareto/NBD with alpha > beta exercises the other branch of the hypergeometric formula.
PARETO_ALPHA_ABOVE_BETA = ParetoNbdParams(r=1.2, alpha=30.0, s=0.8, beta=6.0)
GAMMA_GAMMA = GammaGammaParams(p=6.25, q=3.74, gamma=15.44)

HORIZONS = (5.0, 39.0)


def _cohort_lengths(rng: np.random.Generator, n: int) -> np.ndarray:
    # Staggered first purchases, as in a real cohort: T between a quarter and a year and a half (weeks).
    return rng.uniform(13.0, 78.0, n)


def _history_groups(cohort: Cohort) -> np.ndarray:
    """Calibration frequency (capped at 6) crossed with recency terciles (recency / T)."""
    capped = np.minimum(cohort.frequency, 6)
    share = np.divide(cohort.recency, cohort.T, out=np.zeros_like(cohort.T), where=cohort.T > 0)
    tercile = np.where(cohort.frequency > 0, np.digitize(share, [1 / 3, 2 / 3]), 0)
    return (capped * 10 + tercile).astype(int)


def _assert_recovered(estimate: np.ndarray, truth: np.ndarray, standard_errors: np.ndarray) -> None:
    # Only meaningful if the data pin the parameters down: otherwise 4 SE would excuse anything.
    assert (standard_errors < 0.3).all(), standard_errors
    z = (np.log(estimate) - np.log(truth)) / standard_errors
    assert np.abs(z).max() < 4, z


def test_bgnbd_fit_recovers_simulated_parameters() -> None:
    rng = np.random.default_rng(20250101)
    cohort = simulate_bgnbd(BGNBD, _cohort_lengths(rng, 8000), HORIZONS, rng)
    fitted = fit_bgnbd(cohort.frequency, cohort.recency, cohort.T)
    truth = np.array([BGNBD.r, BGNBD.alpha, BGNBD.a, BGNBD.b])
    estimate = np.array([fitted.r, fitted.alpha, fitted.a, fitted.b])

    def total(params: np.ndarray) -> float:
        return float(
            bgnbd_module.log_likelihood(
                BgNbdParams(*params), cohort.frequency, cohort.recency, cohort.T
            ).sum()
        )

    assert fitted.log_likelihood == pytest.approx(total(estimate), rel=1e-12)
    assert fitted.log_likelihood >= total(truth)
    _assert_recovered(estimate, truth, log_parameter_standard_errors(total, estimate))


@pytest.mark.parametrize("truth", [PARETO, PARETO_ALPHA_ABOVE_BETA], ids=["alpha<beta", "alpha>beta"])
def test_pareto_nbd_fit_recovers_simulated_parameters(truth: ParetoNbdParams) -> None:
    rng = np.random.default_rng(20250102)
    cohort = simulate_pareto_nbd(truth, _cohort_lengths(rng, 8000), HORIZONS, rng)
    fitted = fit_pareto_nbd(cohort.frequency, cohort.recency, cohort.T)
    true_vector = np.array([truth.r, truth.alpha, truth.s, truth.beta])
    estimate = np.array([fitted.r, fitted.alpha, fitted.s, fitted.beta])

    def total(params: np.ndarray) -> float:
        return float(
            pareto_module.log_likelihood(
                ParetoNbdParams(*params), cohort.frequency, cohort.recency, cohort.T
            ).sum()
        )

    assert fitted.log_likelihood == pytest.approx(total(estimate), rel=1e-12)
    assert fitted.log_likelihood >= total(true_vector)
    _assert_recovered(estimate, true_vector, log_parameter_standard_errors(total, estimate))


def test_gamma_gamma_fit_recovers_simulated_parameters() -> None:
    rng = np.random.default_rng(20250103)
    frequency = 1 + rng.poisson(2.0, 4000)
    sample = simulate_gamma_gamma(GAMMA_GAMMA, frequency, rng)
    fitted = fit_gamma_gamma(sample.frequency, sample.monetary_value)
    truth = np.array([GAMMA_GAMMA.p, GAMMA_GAMMA.q, GAMMA_GAMMA.gamma])
    estimate = np.array([fitted.p, fitted.q, fitted.gamma])

    def total(params: np.ndarray) -> float:
        return float(
            gamma_gamma_module.log_likelihood(
                GammaGammaParams(*params), sample.frequency, sample.monetary_value
            ).sum()
        )

    assert fitted.log_likelihood >= total(truth)
    _assert_recovered(estimate, truth, log_parameter_standard_errors(total, estimate))


def _bgnbd_style_no_purchase(params: ParetoNbdParams, t: float, cohort: Cohort) -> np.ndarray:
    """The BG/NBD formula (no death without a purchase), wrong for Pareto/NBD where death strikes anytime."""
    alive = probability_alive(params, cohort.frequency, cohort.recency, cohort.T)
    stays_silent_if_alive = ((params.alpha + cohort.T) / (params.alpha + cohort.T + t)) ** (
        params.r + cohort.frequency
    )
    return 1 - alive * (1 - stays_silent_if_alive)


@pytest.mark.parametrize(
    ("truth", "simulate"),
    [
        (BGNBD, simulate_bgnbd),
        (PARETO, simulate_pareto_nbd),
        (PARETO_ALPHA_ABOVE_BETA, simulate_pareto_nbd),
    ],
    ids=["bgnbd", "pareto alpha<beta", "pareto alpha>beta"],
)
def test_conditional_predictions_match_simulated_futures(
    truth: BgNbdParams | ParetoNbdParams, simulate: Callable[..., Cohort]
) -> None:
    rng = np.random.default_rng(20250104)
    cohort = simulate(truth, _cohort_lengths(rng, 200_000), HORIZONS, rng)
    groups = _history_groups(cohort)
    for horizon in HORIZONS:
        future = cohort.holdout[horizon]
        bought = future > 0
        silent = (~bought).astype(float)
        p_silent = probability_no_purchase(truth, horizon, cohort.frequency, cohort.recency, cohort.T)
        expected = expected_purchases(truth, horizon, cohort.frequency, cohort.recency, cohort.T)

        for observed, predicted in ((silent, p_silent), (future.astype(float), expected)):
            scores = group_z_scores(observed, predicted, groups, bought)
            assert len(scores) >= 12, "too few groups scored for the check to mean anything"
            assert max(abs(z) for z in scores.values()) < 4, scores
            overall = group_z_scores(observed, predicted, np.zeros(groups.size, dtype=int), bought)
            assert abs(overall[0]) < 4, overall

    # Power, at the longer horizon where the differences are large: the common shortcut
    # P(no purchase) ~ exp(-E[purchases]) is rejected by the same check ...
    shortcut = group_z_scores(silent, np.exp(-expected), groups, bought)
    assert max(abs(z) for z in shortcut.values()) > 10
    # ... and so is the BG/NBD expression applied to Pareto/NBD (it ignores dying inside the window).
    if isinstance(truth, ParetoNbdParams):
        wrong = group_z_scores(silent, _bgnbd_style_no_purchase(truth, horizon, cohort), groups, bought)
        assert max(abs(z) for z in wrong.values()) > 10


def test_conditional_expected_spend_matches_simulated_customers() -> None:
    rng = np.random.default_rng(20250105)
    frequency = rng.poisson(1.5, 200_000)
    sample = simulate_gamma_gamma(GAMMA_GAMMA, frequency, rng)
    predicted = conditional_expected_spend(GAMMA_GAMMA, sample.frequency, sample.monetary_value)
    # Groups from the observed history: frequency (capped) crossed with quartiles of the observed mean spend.
    capped = np.minimum(sample.frequency, 5)
    quartile = np.zeros(frequency.size, dtype=int)
    repeat = frequency > 0
    quartile[repeat] = np.digitize(
        sample.monetary_value[repeat], np.quantile(sample.monetary_value[repeat], [0.25, 0.5, 0.75])
    )
    groups = capped.astype(int) * 10 + quartile
    scores = group_z_scores(sample.true_mean_spend, predicted, groups, np.ones(frequency.size, dtype=bool))
    assert len(scores) == 1 + 5 * 4
    assert max(abs(z) for z in scores.values()) < 4, scores
    # Power: using the observed mean as is (no shrinkage towards the population mean) is rejected.
    naive = np.where(repeat, sample.monetary_value, GAMMA_GAMMA.p * GAMMA_GAMMA.gamma / (GAMMA_GAMMA.q - 1))
    naive_scores = group_z_scores(sample.true_mean_spend, naive, groups, np.ones(frequency.size, dtype=bool))
    assert max(abs(z) for z in naive_scores.values()) > 6
