"""The known-parameter Pareto/NBD forecast (the benchmark's oracle) vs its closed form and a simulation."""

from __future__ import annotations

import numpy as np

from ml.btyd.individual import closed_form_p_alive, forecast, population_forecast


def test_constant_season_matches_the_closed_form() -> None:
    rng = np.random.default_rng(0)
    n = 2_000
    lam = rng.gamma(0.8, 1 / 80.0, n)
    mu = rng.gamma(0.9, 1 / 600.0, n)
    as_of = 900
    last = rng.integers(0, as_of, n)
    result = forecast(lam, mu, last, as_of, horizon_days=180)
    gap = (as_of - last - 1).astype(np.float64)
    # The daily grid integrates the dying-within-a-day term at the midpoint: equal to within O(lam^2).
    np.testing.assert_allclose(result.p_alive, closed_form_p_alive(lam, mu, gap), rtol=2e-3, atol=1e-4)
    expected_if_alive = lam / mu * -np.expm1(-mu * 180)
    np.testing.assert_allclose(result.expected_purchases, result.p_alive * expected_if_alive, rtol=1e-3)


def test_population_forecast_with_one_known_point_is_the_individual_forecast() -> None:
    rng = np.random.default_rng(1)
    n, as_of = 300, 900
    lam, mu = 0.01, 0.002
    first = rng.integers(0, as_of - 1, n)
    last = first + (rng.random(n) * (as_of - 1 - first)).astype(np.int64)
    season = 1.0 + 0.5 * np.sin(np.arange(as_of + 180) / 58.0)
    known = forecast(np.full(n, lam), np.full(n, mu), last, as_of, 180, season)
    # All prior mass on (lam, mu) (the other point has none): the history cannot move the posterior.
    pooled = population_forecast(np.array([lam, 0.05]), np.array([mu, 0.0001]), np.array([1.0, 1e-300]),
                                 rng.integers(0, 5, n), first, last, as_of, 180, season)  # fmt: skip
    np.testing.assert_allclose(pooled.p_alive, known.p_alive, rtol=1e-9)
    np.testing.assert_allclose(pooled.p_no_purchase, known.p_no_purchase, rtol=1e-9)
    np.testing.assert_allclose(pooled.expected_purchases, known.expected_purchases, rtol=1e-9)
    # A real prior: more repeat purchases over the same span mean a higher posterior rate.
    grid = np.geomspace(1e-4, 0.2, 40)
    few, many = (
        population_forecast(grid, np.full(40, mu), np.ones(40), np.full(1, x), np.array([100]),
                            np.array([800]), as_of, 180, season).expected_purchases[0]
        for x in (1, 20)
    )  # fmt: skip
    assert many > 5 * few


def _simulate(
    rng: np.random.Generator, n: int, as_of: int, horizon: int, season: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Generator-style people: first purchase at acquisition, seasonal Poisson buying until death."""
    lam = rng.gamma(0.8, 1 / 80.0, n)
    mu = rng.gamma(0.9, 1 / 600.0, n)
    acquired = rng.uniform(0, as_of - 1, n)
    death = acquired + rng.exponential(1.0, n) / mu
    end = np.minimum(death, as_of + horizon)
    peak = season.max()
    last = acquired.copy()
    future = np.zeros(n)
    counts = rng.poisson(lam * peak * np.maximum(end - acquired, 0))
    person = np.repeat(np.arange(n), counts)
    at = np.repeat(acquired, counts) + rng.random(counts.sum()) * np.repeat(end - acquired, counts)
    kept = rng.random(at.size) * peak < season[at.astype(np.int64)]
    person, at = person[kept], at[kept]
    past = at < as_of
    np.maximum.at(last, person[past], at[past])
    np.add.at(future, person[~past], 1.0)
    return lam, mu, np.floor(last).astype(np.int64), future, death >= as_of


def test_forecast_is_calibrated_on_a_seasonal_simulation() -> None:
    rng = np.random.default_rng(7)
    as_of, horizon = 700, 180
    days = np.arange(as_of + horizon + 1)
    season = 1.0 + 0.6 * np.sin(2 * np.pi * days / 365.0)  # strong, so ignoring it would show
    lam, mu, last, future, alive = _simulate(rng, 40_000, as_of, horizon, season)
    result = forecast(lam, mu, last, as_of, horizon, season)
    flat = forecast(lam, mu, last, as_of, horizon)
    # Totals: expected alive people and future purchases match what happened (4-sigma-ish bands).
    assert abs(result.p_alive.sum() - alive.sum()) < 4 * np.sqrt(alive.sum())
    assert abs(result.expected_purchases.sum() - future.sum()) / future.sum() < 0.03
    # In deciles of the forecast, the share who bought nothing matches the predicted P(no purchase).
    churned = (future == 0).astype(np.float64)
    order = np.argsort(result.p_no_purchase)
    for decile in np.array_split(order, 10):
        assert abs(result.p_no_purchase[decile].mean() - churned[decile].mean()) < 0.03
    # The season matters here: the flat-intensity forecast misses the total by more.
    flat_error = abs(flat.expected_purchases.sum() - future.sum())
    assert flat_error > abs(result.expected_purchases.sum() - future.sum())
