"""Real data: the CDNOW 1/10 sample reproduces the published fits (Fader, Hardie & Lee 2005)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import hyp2f1

from ml import heuristics
from ml.btyd import (
    BgNbdParams,
    GammaGammaParams,
    ParetoNbdParams,
    expected_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    fit_pareto_nbd,
    predicted_ltv,
    probability_no_purchase,
)
from tests.ml.cdnow import HOLDOUT_WEEKS

PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "log_likelihood": -9582.4}
PUBLISHED_PARETO = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669, "log_likelihood": -9595.0}
PUBLISHED_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def _columns(summary: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    return summary["frequency"], summary["recency"], summary["T"]


@pytest.fixture(scope="module")
def bgnbd(cdnow: pd.DataFrame) -> BgNbdParams:
    return fit_bgnbd(*_columns(cdnow))


@pytest.fixture(scope="module")
def pareto(cdnow: pd.DataFrame) -> ParetoNbdParams:
    return fit_pareto_nbd(*_columns(cdnow))


@pytest.fixture(scope="module")
def gamma_gamma(cdnow: pd.DataFrame) -> GammaGammaParams:
    return fit_gamma_gamma(cdnow["frequency"], cdnow["monetary_value"])


def _assert_close_to_published(fitted: object, published: dict[str, float], rel: float = 0.01) -> None:
    for name, value in published.items():
        tolerance = 0.001 if name == "log_likelihood" else rel
        assert getattr(fitted, name) == pytest.approx(value, rel=tolerance), name


def test_summary_reproduces_the_published_counts(cdnow: pd.DataFrame) -> None:
    assert len(cdnow) == 2357
    assert cdnow["first"].between(pd.Timestamp("1997-01-01"), pd.Timestamp("1997-03-31")).all()
    assert cdnow["frequency"].sum() == 2457
    assert cdnow["holdout"].sum() == 1882
    # 1,411 of the 2,357 made no repeat purchase in calibration, leaving 946 repeat buyers whose mean
    # repeat spend averages $35.08 (the figures the Gamma-Gamma note works with).
    assert (cdnow["frequency"] == 0).sum() == 1411
    repeat = cdnow[cdnow["frequency"] > 0]
    assert repeat["monetary_value"].mean() == pytest.approx(35.08, abs=0.005)
    # Customer 1 bought on 1997-01-01, 01-18 and 08-02 before the calibration end: FHL's (x, t_x, T) row.
    assert cdnow.loc[1, ["frequency", "recency", "T"]].tolist() == pytest.approx([2, 30.43, 38.86], abs=0.005)


def test_bgnbd_matches_published_parameters(bgnbd: BgNbdParams) -> None:
    _assert_close_to_published(bgnbd, PUBLISHED_BGNBD)


def test_pareto_nbd_matches_published_parameters(pareto: ParetoNbdParams) -> None:
    _assert_close_to_published(pareto, PUBLISHED_PARETO)


def test_gamma_gamma_matches_published_parameters(gamma_gamma: GammaGammaParams) -> None:
    _assert_close_to_published(gamma_gamma, PUBLISHED_GAMMA_GAMMA)
    # The implied population mean spend per transaction, p gamma / (q - 1), is about $35.
    assert gamma_gamma.p * gamma_gamma.gamma / (gamma_gamma.q - 1) == pytest.approx(35.2, abs=0.1)


def _unconditional_bgnbd_purchases(params: BgNbdParams, t: np.ndarray) -> np.ndarray:
    """E[X(t)] for a customer first seen at time 0 (FHL 2005 eq. 9), a path independent of the library."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))


def test_bgnbd_holdout_forecast(cdnow: pd.DataFrame, bgnbd: BgNbdParams) -> None:
    frequency, recency, T = _columns(cdnow)
    forecast = expected_purchases(bgnbd, HOLDOUT_WEEKS, frequency, recency, T)
    total = float(forecast.sum())
    # The model says 1,653 against 1,882 observed (-12%): the published BG/NBD undershoots the CDNOW holdout.
    # That is the model, not this code: the unconditional eq. 9 forecast for the same customers and window
    # gives the same total, and so do the published (rounded) parameters.
    assert total == pytest.approx(1882, rel=0.15)
    t = T.to_numpy()
    unconditional = _unconditional_bgnbd_purchases(bgnbd, t + HOLDOUT_WEEKS) - _unconditional_bgnbd_purchases(
        bgnbd, t
    )
    assert total == pytest.approx(float(unconditional.sum()), rel=0.02)
    published = BgNbdParams(**{k: v for k, v in PUBLISHED_BGNBD.items() if k != "log_likelihood"})
    assert total == pytest.approx(
        float(expected_purchases(published, HOLDOUT_WEEKS, frequency, recency, T).sum()), rel=0.005
    )
    # Conditioning carries information: customers grouped by calibration frequency are forecast in the right
    # order and, for the one-time buyers (60% of the base), close to what they did.
    by_frequency = pd.DataFrame(
        {"x": frequency.clip(upper=7), "forecast": forecast, "actual": cdnow["holdout"]}
    )
    means = by_frequency.groupby("x")[["forecast", "actual"]].mean()
    assert means["forecast"].is_monotonic_increasing
    assert means.loc[0, "forecast"] == pytest.approx(means.loc[0, "actual"], rel=0.1)


def test_pareto_nbd_holdout_forecast(cdnow: pd.DataFrame, pareto: ParetoNbdParams) -> None:
    total = float(expected_purchases(pareto, HOLDOUT_WEEKS, *_columns(cdnow)).sum())
    assert total == pytest.approx(1882, rel=0.15)


def _auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve via the rank-sum statistic (ties count half)."""
    ranks = pd.Series(score).rank().to_numpy()
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def test_churn_baselines_rank_holdout_non_buyers(
    cdnow: pd.DataFrame, bgnbd: BgNbdParams, pareto: ParetoNbdParams
) -> None:
    frequency, recency, T = _columns(cdnow)
    churned = (cdnow["holdout"] == 0).to_numpy()
    for params in (bgnbd, pareto):
        p_churn = probability_no_purchase(params, HOLDOUT_WEEKS, frequency, recency, T)
        assert ((p_churn > 0) & (p_churn < 1)).all()
        assert _auc(p_churn, churned) > 0.73
        # Calibrated in aggregate to within the models' known undershoot of holdout buying.
        assert p_churn.sum() == pytest.approx(churned.sum(), rel=0.12)
    assert _auc(heuristics.recency_churn_score(recency, T), churned) > 0.7


def test_ltv_baselines_on_holdout_spend(
    cdnow: pd.DataFrame, bgnbd: BgNbdParams, gamma_gamma: GammaGammaParams
) -> None:
    frequency, recency, T = _columns(cdnow)
    ltv = predicted_ltv(bgnbd, gamma_gamma, HOLDOUT_WEEKS, frequency, recency, T, cdnow["monetary_value"])
    heuristic = heuristics.frequency_rate_ltv(frequency, T, cdnow["monetary_value"], HOLDOUT_WEEKS)
    actual = cdnow["holdout_spend"]
    assert (ltv >= 0).all()
    # $59.9k forecast against $71.0k spent: the purchase undershoot above, carried into spend.
    assert ltv.sum() == pytest.approx(actual.sum(), rel=0.2)
    # The rate heuristic extrapolates every customer as if none ever left, so it forecasts far more.
    assert heuristic.sum() > 1.3 * ltv.sum()
    bought = (actual > 0).to_numpy()
    assert _auc(ltv, bought) > 0.73
    assert _auc(heuristic, bought) > 0.7
