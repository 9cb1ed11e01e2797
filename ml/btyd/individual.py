"""Pareto/NBD for ONE person whose purchase rate and dropout rate are known (no mixing distributions).

This is the Bayes-optimal predictor when the latent parameters are given: the only thing still unknown
is whether the person is alive, and that is inferred from the observed gap since their last purchase.
The benchmark's oracle uses it with the generator's true per-person rates.

While alive the person buys as a Poisson process with intensity ``lam * season(t)`` (``season`` is 1 for
the textbook model) and dies at an exponential time with rate ``mu``. With no purchase in (t_x, T]:

    P(alive at T and no purchase)  = exp(-mu (T - t_x)) exp(-lam S(t_x, T))
    P(dead by T and no purchase)   = int_{t_x}^{T} mu exp(-mu (tau - t_x)) exp(-lam S(t_x, tau)) dtau

where S(a, b) is the integrated season over (a, b]. P(alive | history) is the first over their sum; with
season = 1 it is the closed form 1 / (1 + mu / (lam + mu) (exp((lam + mu)(T - t_x)) - 1)).
The purchase count x does not enter: given lam, the count carries no news about being alive.

All times are whole days on one grid (day 0 = the first day of ``season``); rates are per day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def closed_form_p_alive(lam: FloatArray, mu: FloatArray, gap: FloatArray) -> FloatArray:
    """P(alive | lam, mu, no purchase for ``gap`` time units since the last one), constant intensity."""
    total = lam + mu
    # exp((lam+mu) gap) - 1 overflows for long gaps; the probability is then ~0, which expm1 -> inf gives.
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + mu / total * np.expm1(total * gap))


@dataclass(frozen=True)
class IndividualForecast:
    """Per person: P(alive now), P(no purchase in the horizon), expected purchases in the horizon."""

    p_alive: FloatArray
    p_no_purchase: FloatArray
    expected_purchases: FloatArray


def _integrals(
    lam: FloatArray,
    mu: FloatArray,
    cumulative: FloatArray,
    start: npt.NDArray[np.int64],
    days: npt.NDArray[np.int64],
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """For each person, over the grid days start, ..., start + days - 1:

    no_death = exp(-mu days - lam S(start, start + days)),
    death    = sum over the days of P(die that day) exp(-lam S(start, the middle of that day)),
    buys     = sum over the days of lam season(day) P(alive during that day).
    """
    death = np.zeros(lam.size)
    buys = np.zeros(lam.size)
    base = cumulative[start]
    for k in range(int(days.max(initial=0))):
        open_ = k < days  # people whose window is over stop contributing
        day = np.where(open_, start + k, start)
        season_mass = cumulative[day + 1] - cumulative[day]
        before = cumulative[day] - base
        survive_start = np.exp(-mu * k)
        # Dying part-way through the day: on average half the day's purchase intensity was faced first.
        die_today = survive_start * -np.expm1(-mu) * np.exp(-lam * (before + 0.5 * season_mass))
        death += np.where(open_, die_today, 0.0)
        buys += np.where(open_, lam * season_mass * survive_start * np.exp(-0.5 * mu), 0.0)
    no_death = np.exp(-mu * days - lam * (cumulative[start + days] - base))
    return no_death, death, buys


def forecast(
    lam: FloatArray,
    mu: FloatArray,
    last_purchase_day: npt.NDArray[np.int64],
    as_of_day: int,
    horizon_days: int,
    season: FloatArray | None = None,
) -> IndividualForecast:
    """The individual-level Pareto/NBD forecast on a daily grid.

    ``last_purchase_day`` and ``as_of_day`` index the grid (as_of_day = the first day NOT observed);
    ``season`` (relative intensity per grid day, covering as_of_day + horizon_days) defaults to 1.
    """
    lam = np.asarray(lam, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    last = np.asarray(last_purchase_day, dtype=np.int64)
    if season is None:
        season = np.ones(as_of_day + horizon_days)
    if season.size < as_of_day + horizon_days:
        end = as_of_day + horizon_days
        raise ValueError(f"season covers {season.size} days, the horizon ends on day {end}")
    if (last >= as_of_day).any() or (last < 0).any():
        raise ValueError("last_purchase_day must lie in [0, as_of_day)")
    cumulative = np.concatenate([[0.0], np.cumsum(season, dtype=np.float64)])
    # The last purchase happens during its day; the silent stretch starts the next day.
    silent_start = last + 1
    gap = as_of_day - silent_start
    alive_and_quiet, dead_and_quiet, _ = _integrals(lam, mu, cumulative, silent_start, gap)
    p_alive = alive_and_quiet / (alive_and_quiet + dead_and_quiet)
    start = np.full(lam.size, as_of_day, dtype=np.int64)
    no_death, death, buys = _integrals(
        lam, mu, cumulative, start, np.full(lam.size, horizon_days, dtype=np.int64)
    )
    none_if_alive = no_death + death
    return IndividualForecast(
        p_alive=p_alive,
        p_no_purchase=1.0 - p_alive * (1.0 - none_if_alive),
        expected_purchases=p_alive * buys,
    )


def population_forecast(
    lam: FloatArray,
    mu: FloatArray,
    prior_weight: FloatArray,
    repeat_purchases: npt.NDArray[np.int64],
    first_purchase_day: npt.NDArray[np.int64],
    last_purchase_day: npt.NDArray[np.int64],
    as_of_day: int,
    horizon_days: int,
    season: FloatArray | None = None,
    chunk_people: int = 500,
) -> IndividualForecast:
    """The Bayes forecast when only the POPULATION's distribution of (lam, mu) is known, not the person's.

    ``lam``, ``mu`` and ``prior_weight`` are the points of a grid and the prior mass of each. Each person's
    posterior over the grid follows from their purchase history alone: ``repeat_purchases`` purchase days
    after the first, which fell on ``first_purchase_day``, the last on ``last_purchase_day``, nothing since.
    The forecast is the known-parameter one (``forecast``) averaged over that posterior: the best any model
    of the purchase history can do when it knows the population exactly.

    Likelihood of a history given (lam, mu), up to factors that do not depend on them:
    lam^x exp(-lam S(first, last)) exp(-mu (last - first)) x (alive-and-quiet + dead-and-quiet mass after
    the last purchase, on ``forecast``'s daily grid). Every quiet stretch ends at the as-of, so the
    dead-and-quiet sums over days are suffix sums of one table per grid point, computed once.
    """
    lam, mu = np.asarray(lam, dtype=np.float64), np.asarray(mu, dtype=np.float64)
    log_prior = np.log(np.asarray(prior_weight, dtype=np.float64))
    first = np.asarray(first_purchase_day, dtype=np.int64)
    last = np.asarray(last_purchase_day, dtype=np.int64)
    x = np.asarray(repeat_purchases, dtype=np.float64)
    if season is None:
        season = np.ones(as_of_day + horizon_days)
    if (first > last).any() or (last >= as_of_day).any() or (first < 0).any():
        raise ValueError("need 0 <= first_purchase_day <= last_purchase_day < as_of_day")
    cumulative = np.concatenate([[0.0], np.cumsum(season, dtype=np.float64)])
    # What each grid point expects over the horizon when alive now (a gap of 0 days: alive for sure).
    now = forecast(lam, mu, np.full(lam.size, as_of_day - 1), as_of_day, horizon_days, season)
    none_if_alive, buys_if_alive = now.p_no_purchase, now.expected_purchases
    # Dying on day d after a quiet stretch from day s: exp(-mu (d - s)) (1 - exp(-mu)) exp(-lam (C(d) -
    # C(s) + half of day d's season)), C the cumulative season; the terms in d alone are summed from s on.
    days = np.arange(as_of_day)
    midday = cumulative[days] + 0.5 * (cumulative[days + 1] - cumulative[days])
    log_terms = -np.outer(mu, days) - np.outer(lam, midday)
    log_tail = np.concatenate(
        [np.logaddexp.accumulate(log_terms[:, ::-1], axis=1)[:, ::-1], np.full((lam.size, 1), -np.inf)],
        axis=1,
    )  # log_tail[:, s] = log sum over d in [s, as_of) of the d terms
    del log_terms
    log_die_within_day = np.log(-np.expm1(-mu))
    p_alive, p_none, buys = (np.empty(x.size) for _ in range(3))
    for lo in range(0, x.size, chunk_people):
        people = slice(lo, lo + chunk_people)
        start = last[people] + 1  # the first quiet day
        gap = (as_of_day - start).astype(np.float64)[:, None]
        quiet = (cumulative[as_of_day] - cumulative[start])[:, None]
        log_alive = -mu * gap - lam * quiet
        log_dead = mu * start[:, None] + lam * cumulative[start][:, None] + log_die_within_day
        log_dead = log_dead + log_tail[:, start].T
        log_quiet = np.logaddexp(log_alive, log_dead)
        active = (cumulative[start] - cumulative[first[people] + 1])[:, None]
        span = (last[people] - first[people]).astype(np.float64)[:, None]
        log_posterior = log_prior + x[people, None] * np.log(lam) - lam * active - mu * span + log_quiet
        weight = np.exp(log_posterior - log_posterior.max(axis=1, keepdims=True))
        weight /= weight.sum(axis=1, keepdims=True)
        alive = np.exp(log_alive - log_quiet)
        p_alive[people] = (weight * alive).sum(axis=1)
        p_none[people] = 1.0 - (weight * alive * (1.0 - none_if_alive)).sum(axis=1)
        buys[people] = (weight * alive * buys_if_alive).sum(axis=1)
    return IndividualForecast(p_alive=p_alive, p_no_purchase=p_none, expected_purchases=buys)
