"""BG/NBD: the beta-geometric / negative binomial distribution model of repeat buying.

Fader, Hardie & Lee (2005), "Counting your customers the easy way: an alternative to the Pareto/NBD
model", Marketing Science 24(2). While alive a customer buys as a Poisson process with rate
lambda ~ Gamma(shape r, rate alpha); right after each repeat purchase they drop out for good with
probability p ~ Beta(a, b). Dropout happens only at a purchase: never at the first purchase, never
between purchases.

For a customer alive at T the posterior is lambda ~ Gamma(r + x, alpha + T) and p ~ Beta(a, b + x),
independent; every prediction below follows from that and from P(alive).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import betaln, expit, gammaln, hyp2f1

from ml.btyd import inputs
from ml.btyd._mle import collapse_duplicates, maximize_log_likelihood
from ml.btyd.inputs import FloatArray


@dataclass(frozen=True, slots=True)
class BgNbdParams:
    """Fitted (or assumed) BG/NBD parameters; alpha is in the time unit of the data it was fitted on."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = math.nan

    def __post_init__(self) -> None:
        inputs.require_positive_parameters("BG/NBD", r=self.r, alpha=self.alpha, a=self.a, b=self.b)


def _log_likelihood(
    r: float, alpha: float, a: float, b: float, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    # FHL (2005) eq. 6: L = B(a, b+x)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+T)^(r+x))
    #                     + [x > 0] B(a+1, b+x-1)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+t_x)^(r+x)),
    # summed in log space: for heavy buyers both terms underflow long before their log does.
    log_common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
    log_alive_at_t = betaln(a, b + x) - (r + x) * np.log(alpha + T)
    repeat = x > 0
    # B(a+1, b-1) need not exist for x = 0, and that term is absent anyway.
    log_died_after_last = np.where(
        repeat, betaln(a + 1.0, b + np.where(repeat, x, 1.0) - 1.0) - (r + x) * np.log(alpha + t_x), -np.inf
    )
    return log_common + np.logaddexp(log_alive_at_t, log_died_after_last)


def log_likelihood(
    params: BgNbdParams, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """Per-customer log-likelihood of the calibration summary (sum it for the model's total)."""
    x, t_x, big_t = inputs.history(frequency, recency, T)
    return _log_likelihood(params.r, params.alpha, params.a, params.b, x, t_x, big_t)


def fit_bgnbd(frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike) -> BgNbdParams:
    """Maximum-likelihood BG/NBD parameters for a calibration summary (any time unit)."""
    x, t_x, big_t = (np.atleast_1d(column) for column in inputs.history(frequency, recency, T))
    inputs.require_repeat_buyers(x, 1, "BG/NBD")
    (x, t_x, big_t), weights = collapse_duplicates(x, t_x, big_t)

    # Start at a unit-free place: r = 1 with alpha matching the observed purchase rate, so the start is
    # equally good whether times are in days or weeks; a = 1, b = 1 is a flat prior on dropout.
    rate = float(weights @ x) / max(float(weights @ big_t), 1e-12)
    start = np.array([1.0, 1.0 / max(rate, 1e-12), 1.0, 1.0])

    def total(params: FloatArray) -> float:
        r, alpha, a, b = params
        return float(weights @ _log_likelihood(r, alpha, a, b, x, t_x, big_t))

    (r, alpha, a, b), value = maximize_log_likelihood(
        total, start, float(weights.sum()), ("r", "alpha", "a", "b")
    )
    return BgNbdParams(float(r), float(alpha), float(a), float(b), log_likelihood=float(value))


def _probability_alive(params: BgNbdParams, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    # P(alive) = 1 / (1 + [x > 0] a / (b + x - 1) * ((alpha + T) / (alpha + t_x))^(r + x))   (FHL eq. 13)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    repeat = x > 0
    log_odds_dead = np.where(
        repeat,
        np.log(a)
        - np.log(b + np.where(repeat, x, 1.0) - 1.0)
        + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)),
        -np.inf,
    )
    return expit(-log_odds_dead)


def _expected_purchases_if_alive(
    params: BgNbdParams, t: FloatArray, x: FloatArray, T: FloatArray
) -> FloatArray:
    """E[purchases in (T, T+t] | alive at T, x].

    FHL eq. 10 without its P(alive) factor:
        (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)],  z = t/(alpha+T+t).
    Euler's transformation turns the bracket's second term into
        (1-z)^(a-1) 2F1(a-1, a+b-1-r; a+b+x-1; z),
    whose parameters no longer grow with x, so heavy buyers do not multiply a huge 2F1 by a tiny power.
    The expression is analytic in a, but 1/(a-1) times a bracket that vanishes at a = 1 cancels badly
    near a = 1, so there it is interpolated linearly between its values at 1 - h and 1 + h (error O(h^2)).
    """
    r, alpha, b = params.r, params.alpha, params.b
    log_one_minus_z = np.log(alpha + T) - np.log(alpha + T + t)
    z = t / (alpha + T + t)

    def closed_form(a: float) -> FloatArray:
        c = a + b + x - 1.0
        tail = np.exp((a - 1.0) * log_one_minus_z) * hyp2f1(a - 1.0, a + b - 1.0 - r, c, z)
        return c / (a - 1.0) * (1.0 - tail)

    h = 1e-5
    if abs(params.a - 1.0) < h:
        weight = (params.a - (1.0 - h)) / (2.0 * h)
        return (1.0 - weight) * closed_form(1.0 - h) + weight * closed_form(1.0 + h)
    return closed_form(params.a)


def probability_alive(
    params: BgNbdParams, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """P(the customer is still active at T | x, t_x, T). Always 1 for customers without repeat purchases."""
    x, t_x, big_t = inputs.history(frequency, recency, T)
    return _probability_alive(params, x, t_x, big_t)


def expected_purchases(
    params: BgNbdParams, t: npt.ArrayLike, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """E[number of purchases in (T, T+t] | x, t_x, T]."""
    x, t_x, big_t = inputs.history(frequency, recency, T)
    horizon = inputs.horizon(t, x.shape)
    return _probability_alive(params, x, t_x, big_t) * _expected_purchases_if_alive(params, horizon, x, big_t)


def probability_no_purchase(
    params: BgNbdParams, t: npt.ArrayLike, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """P(no purchase in (T, T+t] | x, t_x, T): the churn probability for a horizon t.

    Dead customers never buy. A customer alive at T cannot drop out without buying (dropout only follows
    a purchase), so they make no purchase exactly when the Poisson clock does not tick in the window:
    E[exp(-lambda t)] with lambda ~ Gamma(r + x, alpha + T), i.e. ((alpha+T)/(alpha+T+t))^(r+x). Hence
        P = 1 - P(alive) * (1 - ((alpha+T)/(alpha+T+t))^(r+x)).
    """
    x, t_x, big_t = inputs.history(frequency, recency, T)
    horizon = inputs.horizon(t, x.shape)
    r, alpha = params.r, params.alpha
    log_no_tick = (r + x) * (np.log(alpha + big_t) - np.log(alpha + big_t + horizon))
    return 1.0 - _probability_alive(params, x, t_x, big_t) * -np.expm1(log_no_tick)
