"""Special-function building blocks shared by the BTYD models."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.integrate import quad
from scipy.optimize import brentq
from scipy.special import hyp2f1

from ml.btyd.inputs import FloatArray

# scipy's hyp2f1(1, b; c; z) is accurate to ~1e-14 for z <= 0.99 but, for large b close to z = 1, returns
# inf/nan or values off by up to 1e-5 (checked against quadrature over thousands of random arguments).
# Beyond this point the integral representation takes over.
_HYP2F1_TRUSTED_UP_TO = 0.99


def _log_hyp2f1_by_quadrature(b: float, c: float, log_one_minus_z: float) -> float:
    """log 2F1(1, b; c; z) from  (c - 1) int_0^inf (1 + y)^-(c-b) (1 + (1 - z) y)^-b dy,  c > b > 0, c > 1.

    In s = log y the integrand is log-concave, so splitting at its mode and at the bend s = -log(1 - z)
    leaves adaptive quadrature three smooth, one-sided pieces; scaling by the peak keeps every value
    representable however extreme the arguments.
    """

    def log_integrand(s: float) -> float:
        return float(s - (c - b) * np.logaddexp(0.0, s) - b * np.logaddexp(0.0, s + log_one_minus_z))

    def slope(s: float) -> float:
        return float(1.0 - (c - b) / (1.0 + np.exp(-s)) - b / (1.0 + np.exp(-(s + log_one_minus_z))))

    # The slope falls from 1 to 1 - c < 0, so the mode is its single root.
    low, high = -1.0, 1.0
    while slope(low) <= 0:
        low *= 2.0
    while slope(high) >= 0:
        high *= 2.0
    mode = brentq(slope, low, high, xtol=1e-12)
    peak = log_integrand(mode)
    bend = max(mode, -log_one_minus_z)

    def scaled(s: float) -> float:
        return float(np.exp(log_integrand(s) - peak))

    total = sum(
        quad(scaled, lower, upper, epsabs=0.0, epsrel=1e-12, limit=400)[0]
        for lower, upper in ((-np.inf, mode), (mode, bend), (bend, np.inf))
        if upper > lower
    )
    return float(np.log(c - 1.0) + peak + np.log(total))


def log_hyp2f1_one(b: FloatArray, c: FloatArray, z: FloatArray, log_one_minus_z: FloatArray) -> FloatArray:
    """log 2F1(1, b; c; z) for c > b > 0, c > 1 and 0 <= z < 1 (log(1 - z) passed in, exact near z = 1)."""
    b, c, z, log_one_minus_z = np.broadcast_arrays(b, c, z, log_one_minus_z)
    with np.errstate(all="ignore"):
        direct = hyp2f1(1.0, b, c, z)
    trusted = (z <= _HYP2F1_TRUSTED_UP_TO) & np.isfinite(direct) & (direct > 0)
    result = np.empty(b.shape)
    result[trusted] = np.log(direct[trusted])
    if not trusted.all():
        # Rare in practice (it needs alpha and beta orders of magnitude apart), and customers share
        # arguments (all one-time buyers do), so integrate each distinct argument once.
        rest = ~trusted
        arguments = np.column_stack([b[rest], c[rest], log_one_minus_z[rest]])
        distinct, inverse = np.unique(arguments, axis=0, return_inverse=True)
        values = np.array([_log_hyp2f1_by_quadrature(*row) for row in distinct])
        result[rest] = values[inverse.ravel()]
    return result


def _log_tail(a: FloatArray, b: FloatArray, p: FloatArray, q: FloatArray, tau: FloatArray) -> FloatArray:
    """log of the tail integral  int_tau^inf (a + u)^-p (b + u)^-q du  (needs p + q > 1).

    Closed form (Euler's integral for 2F1, then Euler's transformation):
        (a + tau)^-p (b + tau)^(1-q) 2F1(1, p; p + q; (a - b) / (a + tau)) / (p + q - 1)   when a >= b,
    and the mirror image with (a, p) and (b, q) swapped when a < b. Expanding around the larger of a and b
    keeps the argument in [0, 1), and the transformed 2F1 has first parameter 1 and second parameter p (or
    q), so its series has positive terms and does not grow with the purchase count the way the textbook
    2F1(r + s + x, ...) form does.
    """
    a, b, p, q, tau = np.broadcast_arrays(a, b, p, q, tau)
    a_tau = a + tau
    b_tau = b + tau
    a_larger = a >= b
    big = np.where(a_larger, a_tau, b_tau)
    small = np.where(a_larger, b_tau, a_tau)
    z = np.abs(a - b) / big
    log_hyp = log_hyp2f1_one(np.where(a_larger, p, q), p + q, z, np.log(small) - np.log(big))
    power = np.where(
        a_larger,
        -p * np.log(a_tau) + (1.0 - q) * np.log(b_tau),
        -q * np.log(b_tau) + (1.0 - p) * np.log(a_tau),
    )
    return log_hyp + power - np.log(p + q - 1.0)


def log_power_integral(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    p: npt.ArrayLike,
    q: npt.ArrayLike,
    lower: npt.ArrayLike,
    upper: npt.ArrayLike,
) -> FloatArray:
    """log of  int_lower^upper (a + u)^-p (b + u)^-q du,  for a, b > 0, p, q > 0, p + q > 1, lower <= upper.

    This one integral carries every Pareto/NBD expression that involves dying part-way through an
    interval: the likelihood term for "alive at the last purchase, died before T" and the probability of
    a purchase in a future window. It is -inf when lower == upper.
    """
    a, b, p, q, lower, upper = (np.asarray(v, dtype=np.float64) for v in (a, b, p, q, lower, upper))
    log_lower = _log_tail(a, b, p, q, lower)
    log_upper = _log_tail(a, b, p, q, upper)
    # The difference of two tails, computed as tail(lower) * (1 - tail(upper) / tail(lower)) in logs so
    # neither tail overflows and a short interval keeps its relative precision.
    with np.errstate(divide="ignore"):
        return log_lower + np.log(-np.expm1(np.minimum(log_upper - log_lower, 0.0)))


def one_minus_power_over_k(k: float, log_base: FloatArray) -> FloatArray:
    """(1 - base^k) / k with base = exp(log_base), continuous through k = 0 (where it is -log_base)."""
    if abs(k) < 1e-12:
        return -log_base
    return -np.expm1(k * log_base) / k
