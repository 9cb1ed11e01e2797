"""Pareto/NBD: Poisson purchasing with an exponential lifetime.

Schmittlein, Morrison & Colombo (1987), "Counting your customers: who are they and what will they do
next?", Management Science 33(1); likelihood and conditional expressions as in Fader & Hardie (2005),
"A note on deriving the Pareto/NBD model and related expressions". While alive a customer buys as a
Poisson process with rate lambda ~ Gamma(r, alpha); their lifetime is exponential with rate
mu ~ Gamma(s, beta). Unlike BG/NBD, death can strike at any moment, including within a future window.

Everything that involves dying part-way through an interval reduces to one integral,
int (a + u)^-p (b + u)^-q du, evaluated by ``ml.btyd._math.log_power_integral``. It is the same function
as the published 2F1 expressions with their alpha >= beta and alpha < beta branches, rewritten so the
hypergeometric series stays tame for heavy buyers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import gammaln

from ml.btyd import inputs
from ml.btyd._math import log_power_integral, one_minus_power_over_k
from ml.btyd._mle import collapse_duplicates, maximize_log_likelihood
from ml.btyd.inputs import FloatArray


@dataclass(frozen=True, slots=True)
class ParetoNbdParams:
    """Fitted (or assumed) Pareto/NBD parameters; alpha and beta are in the time unit of the data."""

    r: float
    alpha: float
    s: float
    beta: float
    log_likelihood: float = math.nan

    def __post_init__(self) -> None:
        inputs.require_positive_parameters("Pareto/NBD", r=self.r, alpha=self.alpha, s=self.s, beta=self.beta)


def _log_alive_and_dead_terms(
    r: float, alpha: float, s: float, beta: float, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """The two parts of the likelihood, without the common factor G(r+x) alpha^r beta^s / G(r).

    Given lambda and mu the likelihood is lambda^x e^-(lambda+mu)T (alive at T) plus
    lambda^x mu int_{t_x}^T e^-(lambda+mu)tau dtau (died between the last purchase and T). Averaging over
    the gamma mixing distributions gives
        alive: (alpha+T)^-(r+x) (beta+T)^-s,
        dead:  s int_{t_x}^T (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau.
    """
    log_alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    log_dead = np.log(s) + log_power_integral(alpha, beta, r + x, s + 1.0, t_x, T)
    return log_alive, log_dead


def _log_likelihood(
    r: float, alpha: float, s: float, beta: float, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    log_alive, log_dead = _log_alive_and_dead_terms(r, alpha, s, beta, x, t_x, T)
    log_common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    return log_common + np.logaddexp(log_alive, log_dead)


def log_likelihood(
    params: ParetoNbdParams, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """Per-customer log-likelihood of the calibration summary (sum it for the model's total)."""
    x, t_x, big_t = inputs.history(frequency, recency, T)
    return _log_likelihood(params.r, params.alpha, params.s, params.beta, x, t_x, big_t)


def fit_pareto_nbd(frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike) -> ParetoNbdParams:
    """Maximum-likelihood Pareto/NBD parameters for a calibration summary (any time unit)."""
    x, t_x, big_t = (np.atleast_1d(column) for column in inputs.history(frequency, recency, T))
    inputs.require_repeat_buyers(x, 1, "Pareto/NBD")
    (x, t_x, big_t), weights = collapse_duplicates(x, t_x, big_t)

    # Unit-free start: r = 1 with alpha matching the observed purchase rate, s = 1 with beta equal to
    # the mean observation length (a median lifetime of the order of the data's own time span).
    n = float(weights.sum())
    rate = float(weights @ x) / max(float(weights @ big_t), 1e-12)
    mean_t = max(float(weights @ big_t) / n, 1e-12)
    start = np.array([1.0, 1.0 / max(rate, 1e-12), 1.0, mean_t])

    def total(params: FloatArray) -> float:
        r, alpha, s, beta = params
        return float(weights @ _log_likelihood(r, alpha, s, beta, x, t_x, big_t))

    (r, alpha, s, beta), value = maximize_log_likelihood(total, start, n, ("r", "alpha", "s", "beta"))
    return ParetoNbdParams(float(r), float(alpha), float(s), float(beta), log_likelihood=float(value))


def _probability_alive(params: ParetoNbdParams, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    # P(alive) is the "alive at T" share of the likelihood.
    log_alive, log_dead = _log_alive_and_dead_terms(params.r, params.alpha, params.s, params.beta, x, t_x, T)
    return np.exp(log_alive - np.logaddexp(log_alive, log_dead))


def probability_alive(
    params: ParetoNbdParams, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """P(the customer is still alive at T | x, t_x, T)."""
    x, t_x, big_t = inputs.history(frequency, recency, T)
    return _probability_alive(params, x, t_x, big_t)


def expected_purchases(
    params: ParetoNbdParams,
    t: npt.ArrayLike,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
) -> FloatArray:
    """E[number of purchases in (T, T+t] | x, t_x, T].

    Alive at T, the posterior is lambda ~ Gamma(r+x, alpha+T), mu ~ Gamma(s, beta+T), independent, and
    E[(lambda/mu)(1 - e^(-mu t))] = (r+x)/(alpha+T) * (beta+T)/(s-1) * [1 - ((beta+T)/(beta+T+t))^(s-1)]
    (Schmittlein et al. 1987; its s -> 1 limit is a logarithm, handled continuously).
    """
    x, t_x, big_t = inputs.history(frequency, recency, T)
    horizon = inputs.horizon(t, x.shape)
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    log_base = np.log(beta + big_t) - np.log(beta + big_t + horizon)
    if_alive = (r + x) / (alpha + big_t) * (beta + big_t) * one_minus_power_over_k(s - 1.0, log_base)
    return _probability_alive(params, x, t_x, big_t) * if_alive


def probability_no_purchase(
    params: ParetoNbdParams,
    t: npt.ArrayLike,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
) -> FloatArray:
    """P(no purchase in (T, T+t] | x, t_x, T): the churn probability for a horizon t.

    Here a customer alive at T can die inside the window without buying, so for an alive customer
        P(purchase in window) = int_0^t E[lambda e^(-lambda u)] E[e^(-mu u)] du
            = (r+x) (alpha+T)^(r+x) (beta+T)^s int_0^t (alpha+T+u)^-(r+x+1) (beta+T+u)^-s du,
    the density of the first purchase at u (alive and no purchase until then), integrated over the window.
    Then P(no purchase) = 1 - P(alive) * P(purchase in window | alive).
    """
    x, t_x, big_t = inputs.history(frequency, recency, T)
    horizon = inputs.horizon(t, x.shape)
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    log_purchase_if_alive = (
        np.log(r + x)
        + (r + x) * np.log(alpha + big_t)
        + s * np.log(beta + big_t)
        + log_power_integral(alpha + big_t, beta + big_t, r + x + 1.0, s, 0.0, horizon)
    )
    # Clip float noise: the probability of buying cannot exceed 1.
    purchase_if_alive = np.minimum(np.exp(log_purchase_if_alive), 1.0)
    return 1.0 - _probability_alive(params, x, t_x, big_t) * purchase_if_alive
