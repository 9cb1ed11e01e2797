"""Draw customers from the BTYD generative stories, to check the math against simulation.

Vectorised: instead of stepping through purchases one by one, each story is reduced to a few draws per
customer using standard facts about Poisson processes (given n events in an interval the event times are
uniform, so the k-th of them sits at a Beta(k, n - k + 1) fraction of the interval).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.btyd import BgNbdParams, GammaGammaParams, ParetoNbdParams


@dataclass(frozen=True)
class Cohort:
    """Calibration summary plus the repeat purchases each customer made in (T, T + h] for each horizon h."""

    frequency: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    holdout: dict[float, np.ndarray]


def _increments(horizons: tuple[float, ...]) -> np.ndarray:
    ordered = np.asarray(horizons, dtype=float)
    assert (np.diff(ordered) > 0).all() and ordered[0] >= 0, "horizons must be increasing"
    return np.diff(ordered, prepend=0.0)


def simulate_bgnbd(
    params: BgNbdParams, T: np.ndarray, horizons: tuple[float, ...], rng: np.random.Generator
) -> Cohort:
    n = T.size
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    p = np.maximum(rng.beta(params.a, params.b, n), 1e-12)
    # Dropout follows the K-th repeat purchase with K ~ Geometric(p) on 1, 2, ...; the customer buys at the
    # first K ticks of a Poisson(lambda) clock and never again.
    purchases_for_life = rng.geometric(p)
    ticks = rng.poisson(lam * T)
    x = np.minimum(purchases_for_life, ticks)
    has_repeat = x > 0
    position = rng.beta(np.where(has_repeat, x, 1), np.where(has_repeat, ticks - x + 1, 1))
    t_x = np.where(has_repeat, T * position, 0.0)
    left = purchases_for_life - x  # > 0 exactly when still alive at T
    holdout: dict[float, np.ndarray] = {}
    ticks_after_t = np.zeros(n, dtype=np.int64)
    for horizon, step in zip(horizons, _increments(horizons), strict=True):
        ticks_after_t = ticks_after_t + rng.poisson(lam * step)
        holdout[horizon] = np.minimum(left, ticks_after_t)
    return Cohort(x.astype(float), t_x, T, holdout)


def simulate_pareto_nbd(
    params: ParetoNbdParams, T: np.ndarray, horizons: tuple[float, ...], rng: np.random.Generator
) -> Cohort:
    n = T.size
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    mu = rng.gamma(params.s, 1.0 / params.beta, n)
    with np.errstate(divide="ignore"):
        lifetime = rng.standard_exponential(n) / mu
    active = np.minimum(lifetime, T)
    x = rng.poisson(lam * active)
    has_repeat = x > 0
    # The last of x uniform purchase times on (0, active] is active * U^(1/x).
    t_x = np.where(has_repeat, active * rng.random(n) ** (1.0 / np.maximum(x, 1)), 0.0)
    holdout: dict[float, np.ndarray] = {}
    counts = np.zeros(n, dtype=np.int64)
    previous_active = np.zeros(n)
    for horizon in horizons:
        active_after_t = np.clip(lifetime - T, 0.0, horizon)
        counts = counts + rng.poisson(lam * (active_after_t - previous_active))
        previous_active = active_after_t
        holdout[horizon] = counts.copy()
    return Cohort(x.astype(float), t_x, T, holdout)


@dataclass(frozen=True)
class SpendSample:
    frequency: np.ndarray
    monetary_value: np.ndarray
    true_mean_spend: (
        np.ndarray
    )  # E[transaction value | nu] = p / nu, what the conditional expectation targets


def simulate_gamma_gamma(
    params: GammaGammaParams, frequency: np.ndarray, rng: np.random.Generator
) -> SpendSample:
    nu = rng.gamma(params.q, 1.0 / params.gamma, frequency.size)
    x = np.maximum(frequency, 1)
    # The mean of x draws of Gamma(p, rate nu) is Gamma(p x, rate nu x).
    mean_value = rng.gamma(params.p * x, 1.0 / (nu * x))
    return SpendSample(frequency.astype(float), np.where(frequency > 0, mean_value, 0.0), params.p / nu)
