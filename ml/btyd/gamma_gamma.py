"""Gamma-Gamma model of the average transaction value.

Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves for customer base analysis", Journal of
Marketing Research 42(4); Fader & Hardie (2013), "The Gamma-Gamma model of monetary value". Each
transaction value is z ~ Gamma(shape p, rate nu); nu ~ Gamma(shape q, rate gamma) across customers.
Spend is assumed independent of the purchase process (check that before trusting LTV).

Only repeat transactions are modelled: ``monetary_value`` is the mean of a customer's x repeat
purchases, and customers without repeats carry no spend information.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import gammaln

from ml.btyd import inputs
from ml.btyd._mle import collapse_duplicates, maximize_log_likelihood
from ml.btyd.inputs import FloatArray


@dataclass(frozen=True, slots=True)
class GammaGammaParams:
    """Fitted (or assumed) Gamma-Gamma parameters; gamma is in the currency of the data."""

    p: float
    q: float
    gamma: float
    log_likelihood: float = math.nan

    def __post_init__(self) -> None:
        inputs.require_positive_parameters("Gamma-Gamma", p=self.p, q=self.q, gamma=self.gamma)


def _log_likelihood(p: float, q: float, gamma: float, x: FloatArray, m: FloatArray) -> FloatArray:
    # The mean of x values Gamma(p, nu) is Gamma(p x, nu x); mixing nu ~ Gamma(q, gamma) gives
    #   f(m | x) = G(px+q) / (G(px) G(q)) * gamma^q m^(px-1) x^(px) / (gamma + m x)^(px+q).
    px = p * x
    return (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + (px - 1.0) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(gamma + m * x)
    )


def log_likelihood(
    params: GammaGammaParams, frequency: npt.ArrayLike, monetary_value: npt.ArrayLike
) -> FloatArray:
    """Per-customer log-likelihood of the mean repeat spend; 0 (no information) for one-time buyers."""
    x, m = inputs.spend(frequency, monetary_value)
    repeat = x > 0
    # Evaluate on safe stand-ins where there is nothing to model, then zero those out.
    value = _log_likelihood(
        params.p, params.q, params.gamma, np.where(repeat, x, 1.0), np.where(repeat, m, 1.0)
    )
    return np.where(repeat, value, 0.0)


def fit_gamma_gamma(frequency: npt.ArrayLike, monetary_value: npt.ArrayLike) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma parameters, fitted on the repeat buyers (frequency > 0) only."""
    x, m = (np.atleast_1d(column) for column in inputs.spend(frequency, monetary_value))
    inputs.require_repeat_buyers(x, 2, "Gamma-Gamma")
    repeat = x > 0
    (x, m), weights = collapse_duplicates(x[repeat], m[repeat])

    # Start from p = 1, q = 2 (an exponential spend with a finite population mean) and gamma set so the
    # model's mean spend p gamma / (q - 1) equals the observed one; this is currency-free.
    mean_spend = float(weights @ m) / float(weights.sum())
    start = np.array([1.0, 2.0, mean_spend])

    def total(params: FloatArray) -> float:
        p, q, gamma = params
        return float(weights @ _log_likelihood(p, q, gamma, x, m))

    (p, q, gamma), value = maximize_log_likelihood(total, start, float(weights.sum()), ("p", "q", "gamma"))
    return GammaGammaParams(float(p), float(q), float(gamma), log_likelihood=float(value))


def conditional_expected_spend(
    params: GammaGammaParams, frequency: npt.ArrayLike, monetary_value: npt.ArrayLike
) -> FloatArray:
    """E[average transaction value | x, m_x]: a credibility-weighted mix of the population mean and m_x.

        E = p (gamma + x m_x) / (p x + q - 1)
          = (q - 1) / (p x + q - 1) * p gamma / (q - 1)  +  p x / (p x + q - 1) * m_x,
    so one-time buyers (x = 0) get the population mean p gamma / (q - 1), which is finite only for q > 1.
    """
    x, m = inputs.spend(frequency, monetary_value)
    p, q, gamma = params.p, params.q, params.gamma
    denominator = p * x + q - 1.0
    if (denominator <= 0).any():
        raise ValueError(
            f"the expected spend is infinite for customers with frequency 0 when q <= 1 (q = {q}); "
            "the Gamma-Gamma fit implies an infinite mean spend"
        )
    return p * (gamma + x * m) / denominator
