"""The baselines a model must beat: BG/NBD and Pareto/NBD (each with Gamma-Gamma) and two heuristics.

Each baseline turns the BTYD summary at one cutoff (``btyd_*`` columns, in days) into the two quantities
the models predict for the horizon: churn = P(no purchase in (cutoff, cutoff + horizon]) and
LTV = expected spend in that window. The BTYD models are fitted on the same summary they score: that uses
nothing after the cutoff, exactly like a data scientist fitting them at that date would.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml import heuristics
from ml.btyd import (
    GammaGammaParams,
    TransactionModelParams,
    conditional_expected_spend,
    expected_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    fit_pareto_nbd,
    probability_no_purchase,
)
from ml.frames import BTYD_COLUMNS

BGNBD = "bg_nbd"
PARETO_NBD = "pareto_nbd"
RECENCY = "recency_heuristic"
FREQUENCY = "frequency_heuristic"
BASELINES = (BGNBD, PARETO_NBD, RECENCY, FREQUENCY)

# The fits run on a random 30k customers: four or five parameters are pinned down to a few percent by
# then, and the likelihood costs ~0.4 ms of CPU per distinct customer summary (22 s for 50k), so fitting
# on a million would take minutes for no visible gain. Predictions still cover every customer.
FIT_SAMPLE_ROWS = 30_000


@dataclass(frozen=True)
class BaselinePredictions:
    """Per-customer churn probabilities and spend per baseline (heuristic churn is a rank score)."""

    churn: dict[str, np.ndarray]
    ltv: dict[str, np.ndarray]
    unavailable: dict[str, str]  # baseline -> why it could not be fitted on these data


@dataclass(frozen=True)
class _Summary:
    frequency: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    monetary_value: np.ndarray


def _summary(rows: pd.DataFrame) -> _Summary:
    x, t_x, big_t, m = (rows[c].to_numpy(dtype=np.float64) for c in BTYD_COLUMNS)
    return _Summary(x, t_x, big_t, m)


def _sample(n: int, seed: int) -> np.ndarray:
    if n <= FIT_SAMPLE_ROWS:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, FIT_SAMPLE_ROWS, replace=False))


def _spend_inputs(s: _Summary) -> tuple[np.ndarray, np.ndarray]:
    # Net spend can make a repeat buyer's mean repeat value 0 (refunds); Gamma-Gamma needs a positive
    # mean, so such customers get the population mean spend (frequency 0) instead of an error.
    usable = (s.frequency > 0) & (s.monetary_value > 0)
    return np.where(usable, s.frequency, 0.0), np.where(usable, s.monetary_value, 0.0)


def _fit_spend(s: _Summary, sample: np.ndarray) -> GammaGammaParams:
    x, m = _spend_inputs(s)
    repeat = sample[x[sample] > 0]
    return fit_gamma_gamma(x[repeat], m[repeat])


def predict_baselines(rows: pd.DataFrame, horizon_days: float, seed: int = 0) -> BaselinePredictions:
    """Fit the BTYD baselines on ``rows``' summary and predict every row for the horizon."""
    s = _summary(rows)
    sample = _sample(s.frequency.size, seed)
    churn: dict[str, np.ndarray] = {}
    ltv: dict[str, np.ndarray] = {}
    unavailable: dict[str, str] = {}

    spend: np.ndarray | None = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            gg = _fit_spend(s, sample)
        spend = conditional_expected_spend(gg, *_spend_inputs(s))
    except (ValueError, RuntimeError) as exc:
        unavailable["gamma_gamma"] = str(exc)

    fitters = {BGNBD: fit_bgnbd, PARETO_NBD: fit_pareto_nbd}
    for name, fit in fitters.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                params: TransactionModelParams = fit(s.frequency[sample], s.recency[sample], s.T[sample])
        except (ValueError, RuntimeError) as exc:
            unavailable[name] = str(exc)
            continue
        # Customers with the same (frequency, recency, T) get the same prediction: compute each once.
        # Most one-time buyers share a history, so this cuts the special-function work several fold.
        histories, inverse = np.unique(
            np.column_stack([s.frequency, s.recency, s.T]), axis=0, return_inverse=True
        )
        x, t_x, big_t = histories[:, 0], histories[:, 1], histories[:, 2]
        inverse = inverse.ravel()
        churn[name] = probability_no_purchase(params, horizon_days, x, t_x, big_t)[inverse]
        if spend is not None:
            ltv[name] = expected_purchases(params, horizon_days, x, t_x, big_t)[inverse] * spend

    churn[RECENCY] = heuristics.recency_churn_score(s.recency, s.T)
    # At the historical repeat rate, purchases in the horizon are Poisson: P(none) = exp(-expected).
    churn[FREQUENCY] = np.exp(-heuristics.frequency_rate_purchases(s.frequency, s.T, horizon_days))
    x, m = _spend_inputs(s)
    ltv[FREQUENCY] = heuristics.frequency_rate_ltv(x, s.T, m, horizon_days)
    return BaselinePredictions(churn, ltv, unavailable)
