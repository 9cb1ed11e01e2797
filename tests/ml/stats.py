"""Small statistics helpers that turn Monte Carlo comparisons into z-scores."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def log_parameter_standard_errors(
    total_log_likelihood: Callable[[np.ndarray], float], estimate: np.ndarray, step: float = 1e-3
) -> np.ndarray:
    """Asymptotic standard errors of log(parameters) from the observed information at the MLE.

    Central second differences of the total log-likelihood in log-parameter space; the inverse of the
    negated Hessian is the covariance of the log-parameter estimates.
    """
    log_estimate = np.log(estimate)
    k = log_estimate.size

    def f(shift: np.ndarray) -> float:
        return total_log_likelihood(np.exp(log_estimate + shift))

    hessian = np.empty((k, k))
    unit = np.eye(k) * step
    for i in range(k):
        for j in range(i, k):
            value = (
                f(unit[i] + unit[j]) - f(unit[i] - unit[j]) - f(-unit[i] + unit[j]) + f(-unit[i] - unit[j])
            ) / (4 * step * step)
            hessian[i, j] = hessian[j, i] = value
    covariance = np.linalg.inv(-hessian)
    return np.sqrt(np.diag(covariance))


def group_z_scores(
    observed: np.ndarray, predicted: np.ndarray, groups: np.ndarray, usable: np.ndarray
) -> dict[int, float]:
    """z-score of mean(observed - predicted) per group, for groups where ``usable`` holds often enough.

    The standard error is the sample one, which is only trustworthy once the group has seen its rare
    outcomes: a group of nearly-dead heavy buyers has a few customers who buy a lot and many who never
    buy, and with too few of the former the sample variance understates the truth. Groups need at least
    100 ``usable`` customers (e.g. holdout buyers) to be scored.
    """
    scores: dict[int, float] = {}
    for group in np.unique(groups):
        member = groups == group
        if usable[member].sum() < 100:
            continue
        residual = observed[member] - predicted[member]
        scores[int(group)] = float(residual.mean() / (residual.std(ddof=1) / np.sqrt(member.sum())))
    return scores
