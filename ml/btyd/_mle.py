"""Maximum likelihood over strictly positive parameters, searched in log space."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize

from ml.btyd.inputs import FloatArray

# exp(+-30) spans every plausible value in any time unit (seconds to years). A parameter that ends on
# this bound means the data do not identify it (for example no sign of dropout at all).
_LOG_BOUND = 30.0


def maximize_log_likelihood(
    total_log_likelihood: Callable[[FloatArray], float],
    start: FloatArray,
    n_observations: float,
    names: tuple[str, ...],
) -> tuple[FloatArray, float]:
    """Return (parameters, total log-likelihood) at the maximum.

    The objective is the mean negative log-likelihood in log-parameter space: the log makes positivity
    free and puts rate and shape parameters on comparable scales, and the mean keeps the gradient
    tolerances independent of the number of customers.
    """

    def objective(log_params: FloatArray) -> float:
        value = total_log_likelihood(np.exp(log_params))
        # Overflowing corners of the parameter space are "very unlikely", not errors.
        return -value / n_observations if np.isfinite(value) else 1e10

    x0 = np.log(np.asarray(start, dtype=np.float64))
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * len(x0)
    result = minimize(
        objective,
        x0,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-9},
    )
    best_x, best_f = result.x, float(result.fun)
    if not result.success:
        # L-BFGS-B with finite-difference gradients can stop on a line-search failure short of the
        # optimum; the simplex does not need gradients and finishes the job from where it stopped.
        polish = minimize(
            objective,
            best_x,
            method="Nelder-Mead",
            bounds=bounds,
            options={"maxiter": 20000, "maxfev": 20000, "xatol": 1e-10, "fatol": 1e-14, "adaptive": True},
        )
        if polish.fun < best_f:
            best_x, best_f = polish.x, float(polish.fun)
    if not np.isfinite(best_f) or best_f >= 1e10:
        raise RuntimeError("maximum likelihood failed: the log-likelihood is not finite anywhere it looked")
    at_bound = [name for name, value in zip(names, best_x, strict=True) if abs(value) >= _LOG_BOUND - 1e-6]
    if at_bound:
        warnings.warn(
            f"parameters {at_bound} hit the search bound exp(+-{_LOG_BOUND:g}); the data do not identify "
            "them and the fit is degenerate",
            RuntimeWarning,
            stacklevel=3,
        )
    return np.exp(best_x), -best_f * n_observations


def collapse_duplicates(*columns: FloatArray) -> tuple[list[FloatArray], FloatArray]:
    """Distinct rows of the given columns and how often each occurs.

    Customers with the same summary have the same likelihood; real data repeat a lot (every one-time
    buyer with the same first-purchase date is one row), so fitting on weighted distinct rows is cheaper.
    """
    stacked = np.column_stack([np.ravel(column) for column in columns])
    distinct, counts = np.unique(stacked, axis=0, return_counts=True)
    return [distinct[:, i] for i in range(distinct.shape[1])], counts.astype(np.float64)
