"""Model-agnostic entry points: one call works for a fitted BG/NBD or Pareto/NBD model."""

from __future__ import annotations

from types import ModuleType

import numpy.typing as npt

from ml.btyd import bgnbd, gamma_gamma, inputs, pareto_nbd
from ml.btyd.bgnbd import BgNbdParams
from ml.btyd.gamma_gamma import GammaGammaParams
from ml.btyd.inputs import FloatArray
from ml.btyd.pareto_nbd import ParetoNbdParams

TransactionModelParams = BgNbdParams | ParetoNbdParams


def _model(params: TransactionModelParams) -> ModuleType:
    if isinstance(params, BgNbdParams):
        return bgnbd
    if isinstance(params, ParetoNbdParams):
        return pareto_nbd
    raise TypeError(f"expected BgNbdParams or ParetoNbdParams, got {type(params).__name__}")


def log_likelihood(
    params: TransactionModelParams, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """Per-customer log-likelihood of a calibration summary (e.g. to compare models on held-out customers)."""
    return _model(params).log_likelihood(params, frequency, recency, T)


def expected_purchases(
    params: TransactionModelParams,
    t: npt.ArrayLike,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
) -> FloatArray:
    """E[number of repeat purchases in (T, T+t] | frequency, recency, T], per customer."""
    return _model(params).expected_purchases(params, t, frequency, recency, T)


def probability_alive(
    params: TransactionModelParams, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """P(still active at T | frequency, recency, T), per customer."""
    return _model(params).probability_alive(params, frequency, recency, T)


def probability_no_purchase(
    params: TransactionModelParams,
    t: npt.ArrayLike,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
) -> FloatArray:
    """P(no purchase in (T, T+t] | frequency, recency, T), per customer: the churn baseline for horizon t."""
    return _model(params).probability_no_purchase(params, t, frequency, recency, T)


def predicted_ltv(
    model_params: TransactionModelParams,
    gg_params: GammaGammaParams,
    t: npt.ArrayLike,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
    monetary_value: npt.ArrayLike,
) -> FloatArray:
    """Expected repeat spend in (T, T+t]: expected purchases times Gamma-Gamma expected spend per purchase.

    Undiscounted on purpose: it is compared with spend actually observed in the same window, which is
    not discounted either. The product of the two expectations is the expectation of the product only
    because the Gamma-Gamma model assumes spend is independent of the purchase process.
    """
    inputs.spend(frequency, monetary_value)  # fail on bad spend before the (costlier) purchase model runs
    purchases = expected_purchases(model_params, t, frequency, recency, T)
    return purchases * gamma_gamma.conditional_expected_spend(gg_params, frequency, monetary_value)
