"""Recency/frequency heuristics: the naive baselines every fitted model must beat.

They take the same BTYD summary columns as ``ml.btyd`` (repeat-purchase frequency, recency and T in any
one time unit, mean repeat spend) so the evaluation scores every baseline on identical inputs.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ml.btyd import inputs
from ml.btyd.inputs import FloatArray


def time_since_last_purchase(recency: npt.ArrayLike, T: npt.ArrayLike) -> FloatArray:
    """T - recency: time from the last purchase to the as-of date, in the unit of the inputs."""
    t_x, big_t = inputs.broadcast(
        ("recency", "T"), inputs.as_float_array("recency", recency), inputs.as_float_array("T", T)
    )
    t_x = inputs.validate_recency_and_t(t_x, big_t)
    return big_t - t_x


def recency_churn_score(recency: npt.ArrayLike, T: npt.ArrayLike) -> FloatArray:
    """Churn score in [0, 1]: the share of the customer's observed life spent since their last purchase.

    (T - recency) / T; higher means more likely churned. Dividing by T puts a customer seen for a month
    and one seen for three years on one scale: a silent spell is only alarming relative to how long the
    customer has been around. Customers first seen at the as-of date (T = 0) score 0: there is no
    silence yet. For an absolute ranking use ``time_since_last_purchase``.
    """
    silence = time_since_last_purchase(recency, T)
    big_t = np.broadcast_to(inputs.as_float_array("T", T), silence.shape)
    return np.divide(silence, big_t, out=np.zeros_like(silence), where=big_t > 0)


def frequency_rate_purchases(frequency: npt.ArrayLike, T: npt.ArrayLike, t: npt.ArrayLike) -> FloatArray:
    """Expected repeat purchases in the next t: the historical repeat-purchase rate frequency / T times t.

    Customers with T = 0 have no history to extrapolate and get 0.
    """
    x, big_t = inputs.broadcast(
        ("frequency", "T"), inputs.as_float_array("frequency", frequency), inputs.as_float_array("T", T)
    )
    inputs.validate_frequency(x)
    if (big_t < 0).any():
        raise ValueError(f"T must be >= 0, got {np.min(big_t)}")
    horizon = inputs.horizon(t, x.shape)
    rate = np.divide(x, big_t, out=np.zeros(x.shape), where=big_t > 0)
    return rate * horizon


def frequency_rate_ltv(
    frequency: npt.ArrayLike, T: npt.ArrayLike, monetary_value: npt.ArrayLike, t: npt.ArrayLike
) -> FloatArray:
    """Spend in the next t at the historical repeat-spend rate: frequency * monetary_value / T * t.

    Only repeat purchases count, like the BTYD models it is compared with (the summary does not carry the
    first purchase's value). Undiscounted, as ``ml.btyd.predicted_ltv``.
    """
    x, m = inputs.spend(frequency, monetary_value)
    return frequency_rate_purchases(x, T, t) * m
