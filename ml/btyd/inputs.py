"""Coercion and validation of the per-customer summary columns every BTYD function takes.

The columns follow lifetimes' ``summary_data_from_transaction_data`` exactly (they are what the
``customer_rfm`` mart carries as ``btyd_*``):

- ``frequency``: number of repeat purchase periods (the first purchase is not counted);
- ``recency``: time from the first to the last purchase (0 when there is no repeat purchase);
- ``T``: time from the first purchase to the end of the observation (calibration) period;
- ``monetary_value``: mean value of the repeat purchases, 0 when there are none.

Times may be in any unit (days, weeks, ...), as long as one call uses one unit throughout.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

# Recency and T often come from two separate date differences; allow float noise of that size, no more.
_RECENCY_SLACK = 1e-9


class History(NamedTuple):
    """Validated, broadcast summary columns (read-only views; never write into them)."""

    frequency: FloatArray
    recency: FloatArray
    T: FloatArray


def as_float_array(name: str, values: npt.ArrayLike) -> FloatArray:
    """A finite float64 array (scalar or 1-d) from a scalar, list, numpy array or pandas Series."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from exc
    if array.ndim > 1:
        raise ValueError(f"{name} must be a scalar or one-dimensional, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def broadcast(names: tuple[str, ...], *arrays: FloatArray) -> list[FloatArray]:
    try:
        broadcast = np.broadcast_arrays(*arrays)
    except ValueError as exc:
        shapes = ", ".join(f"{name} {array.shape}" for name, array in zip(names, arrays, strict=True))
        raise ValueError(f"the summary columns must have the same length, got {shapes}") from exc
    if broadcast[0].size == 0:
        raise ValueError("no customers: the summary columns are empty")
    return broadcast


def _first_offender(mask: npt.NDArray[np.bool_]) -> int:
    return int(np.flatnonzero(np.atleast_1d(mask))[0])


def validate_frequency(frequency: FloatArray) -> None:
    if (frequency < 0).any():
        raise ValueError(f"frequency must be >= 0, got {np.min(frequency)}")
    if (frequency != np.round(frequency)).any():
        raise ValueError("frequency must be a whole number of repeat purchase periods")


def validate_recency_and_t(recency: FloatArray, T: FloatArray) -> FloatArray:
    """Check 0 <= recency <= T and return recency clipped to T (removes float noise only)."""
    if (recency < 0).any():
        raise ValueError(f"recency must be >= 0, got {np.min(recency)}")
    if (T < 0).any():
        raise ValueError(f"T must be >= 0, got {np.min(T)}")
    too_recent = recency > T + _RECENCY_SLACK * np.maximum(np.abs(T), 1.0)
    if too_recent.any():
        i = _first_offender(too_recent)
        raise ValueError(
            f"recency must not exceed T: customer at position {i} has recency "
            f"{np.atleast_1d(recency)[i]} > T {np.atleast_1d(T)[i]}"
        )
    return np.minimum(recency, T)


def history(frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike) -> History:
    """Validate (frequency, recency, T) and broadcast them to one shape."""
    x, t_x, big_t = broadcast(
        ("frequency", "recency", "T"),
        as_float_array("frequency", frequency),
        as_float_array("recency", recency),
        as_float_array("T", T),
    )
    validate_frequency(x)
    t_x = validate_recency_and_t(t_x, big_t)
    # lifetimes sets recency to 0 for one-time buyers; anything else means the columns were mixed up.
    inconsistent = (x == 0) & (t_x != 0)
    if inconsistent.any():
        i = _first_offender(inconsistent)
        raise ValueError(
            f"recency must be 0 when frequency is 0: customer at position {i} has recency "
            f"{np.atleast_1d(t_x)[i]} without repeat purchases"
        )
    return History(x, t_x, big_t)


def spend(frequency: npt.ArrayLike, monetary_value: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Validate (frequency, monetary_value) and broadcast them to one shape."""
    x, m = broadcast(
        ("frequency", "monetary_value"),
        as_float_array("frequency", frequency),
        as_float_array("monetary_value", monetary_value),
    )
    validate_frequency(x)
    if (m < 0).any():
        raise ValueError(f"monetary_value must be >= 0, got {np.min(m)}")
    no_value = (x > 0) & (m <= 0)
    if no_value.any():
        i = _first_offender(no_value)
        raise ValueError(
            f"monetary_value must be > 0 for repeat buyers: customer at position {i} has frequency "
            f"{np.atleast_1d(x)[i]} and monetary_value {np.atleast_1d(m)[i]}"
        )
    return x, m


def horizon(t: npt.ArrayLike, customers_shape: tuple[int, ...]) -> FloatArray:
    """Validate a prediction horizon (same time unit as recency and T): a scalar or one per customer."""
    t_array = as_float_array("t", t)
    if (t_array < 0).any():
        raise ValueError(f"the horizon t must be >= 0, got {np.min(t_array)}")
    try:
        np.broadcast_shapes(t_array.shape, customers_shape)
    except ValueError as exc:
        raise ValueError(
            f"the horizon t must be a scalar or have one value per customer, got shape {t_array.shape} "
            f"for {customers_shape} customers"
        ) from exc
    return t_array


def require_positive_parameters(model: str, **values: float) -> None:
    """Model parameters are rates and shapes: each must be a finite number > 0."""
    bad = {name: value for name, value in values.items() if not (np.isfinite(value) and value > 0)}
    if bad:
        raise ValueError(f"{model} parameters must be finite and > 0, got {bad}")


def require_repeat_buyers(frequency: FloatArray, minimum: int, model: str) -> None:
    """A fit needs customers who bought again; without them the purchase rate is not identified."""
    repeat_buyers = int(np.count_nonzero(frequency > 0))
    if repeat_buyers < minimum:
        raise ValueError(
            f"{model} needs at least {minimum} customer(s) with frequency > 0 to be fitted, "
            f"got {repeat_buyers}"
        )
