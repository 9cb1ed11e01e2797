"""Simulated ML tables with the dbt contract (ml.ml_training_examples, ml.ml_scoring_features).

Customers buy as Pareto/NBD-like processes (Poisson purchases while alive, exponential lifetimes) and
carry an engagement feature that tracks whether they are still alive at the cutoff, the kind of signal
web and email features give and the BTYD summary lacks: a model that uses it should beat the baselines.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

DAY0 = pd.Timestamp("2024-01-01")


@dataclass(frozen=True)
class SimulatedTables:
    training: pd.DataFrame
    scoring: pd.DataFrame
    horizon_days: int


def _transactions(
    n: int, end_day: int, rng: np.random.Generator
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    first = rng.integers(0, end_day // 2, n)
    rate = rng.gamma(1.0, 1 / 40, n)  # purchases per day while alive
    lifetime = rng.exponential(1.0, n) / rng.gamma(1.5, 1 / 900, n)
    death = first + lifetime
    active = np.clip(np.minimum(death, end_day) - first, 0, None)
    repeats = rng.poisson(rate * active)
    person = np.repeat(np.arange(n), repeats)
    day = np.floor(first[person] + rng.random(person.size) * active[person]).astype(int)
    mean_spend = rng.lognormal(3.5, 0.5, n)
    amounts = rng.gamma(4.0, mean_spend[person] / 4.0)
    orders = pd.DataFrame(
        {
            "person": np.r_[np.arange(n), person],
            "day": np.r_[first, day],
            "amount": np.r_[rng.gamma(4.0, mean_spend / 4.0), amounts],
        }
    )
    daily = orders.groupby(["person", "day"], as_index=False)["amount"].sum()
    return daily, first, death, rate


def _features(daily: pd.DataFrame, first: np.ndarray, death: np.ndarray, cutoff: int, horizon: int,
              rng: np.random.Generator) -> pd.DataFrame:  # fmt: skip
    seen = daily[daily["day"] <= cutoff]
    by_person = seen.groupby("person")
    summary = pd.DataFrame(
        {
            "days": by_person["day"].count(),
            "last_day": by_person["day"].max(),
            "spend": by_person["amount"].sum(),
            "orders_90d": seen[seen["day"] > cutoff - 90].groupby("person")["day"].count(),
        }
    ).fillna({"orders_90d": 0})
    people = summary.index.to_numpy()
    first_day = first[people]
    first_amount = daily.set_index(["person", "day"])["amount"].reindex(
        list(zip(people, first_day, strict=True))
    )
    frequency = summary["days"].to_numpy() - 1
    repeat_spend = summary["spend"].to_numpy() - first_amount.to_numpy()
    alive = death[people] > cutoff
    frame = pd.DataFrame(
        {
            "person_id": [f"p{p:06d}" for p in people],
            "cutoff_date": (DAY0 + pd.to_timedelta(cutoff, unit="D")).date(),
            "horizon_days": horizon,
            "f_orders_90d": summary["orders_90d"].to_numpy(dtype=float),
            "f_net_revenue": summary["spend"].to_numpy(),
            "f_sessions_30d": rng.poisson(np.where(alive, 4.0, 0.3)).astype(float),
            # Mostly missing, like web features for people who never visited: XGBoost must cope with nulls.
            "f_email_clicks_90d": np.where(
                rng.random(people.size) < 0.7, np.nan, rng.poisson(1.0, people.size)
            ),
            "btyd_frequency": frequency.astype(float),
            "btyd_recency": np.where(frequency > 0, summary["last_day"].to_numpy() - first_day, 0).astype(
                float
            ),
            "btyd_t": (cutoff - first_day).astype(float),
            "btyd_monetary_value": np.where(frequency > 0, repeat_spend / np.maximum(frequency, 1), 0.0),
        }
    )
    return _with_labels(frame, daily, cutoff, horizon)


def _with_labels(frame: pd.DataFrame, daily: pd.DataFrame, cutoff: int, horizon: int) -> pd.DataFrame:
    """The frame's people labelled with the window (cutoff, cutoff + horizon]."""
    people = frame["person_id"].str[1:].astype(int).to_numpy()
    window = daily[(daily["day"] > cutoff) & (daily["day"] <= cutoff + horizon)].groupby("person")["amount"]
    spend_in_window = window.sum().reindex(people, fill_value=0.0).to_numpy()
    return frame.assign(
        horizon_days=horizon,
        label_is_churned=(spend_in_window == 0).astype(int),
        label_net_spend=spend_in_window,
    )


def _day(frame: pd.DataFrame) -> int:
    """The simulation day of a one-cutoff frame."""
    return int((pd.Timestamp(frame["cutoff_date"].iloc[0]) - DAY0).days)


def _with_new_signal(
    frame: pd.DataFrame, death: np.ndarray, rate: np.ndarray, cutoff: int, since: int, seed: int
) -> pd.DataFrame:
    """Column f_email_opens_30d: a strong sign of buying soon (it tracks the purchase rate of the living),
    observed only from day ``since`` on (a newly connected ESP), missing before. Drawn per cutoff, so
    every window sees the same values at a cutoff."""
    people = frame["person_id"].str[1:].astype(int).to_numpy()
    rng = np.random.default_rng([seed, cutoff])
    opens = rng.poisson(np.where(death[people] > cutoff, 300.0 * rate[people], 0.1)).astype(float)
    return frame.assign(f_email_opens_30d=opens if cutoff >= since else np.nan)


def simulate_tables(
    customers: int = 3000,
    cutoffs: int = 4,
    horizon_days: int = 90,
    seed: int = 7,
    *,
    short_horizon_days: int | None = None,
    short_cutoffs: int = 6,
    signal_since_days_before: int | None = None,
) -> SimulatedTables:
    """Monthly training cutoffs; the latest one's label window ends at the scoring as-of.

    ``short_horizon_days``: also a short label window's rows (dbt var ml_short_horizon_days), its latest
    cutoff that many days before the as-of, with the main rows' features at a shared cutoff.
    ``signal_since_days_before``: add f_email_opens_30d, observed only that many days before the as-of.
    """
    rng = np.random.default_rng(seed)
    as_of = 720
    cutoff_days = [as_of - horizon_days - 30 * i for i in reversed(range(cutoffs))]
    daily, first, death, rate = _transactions(customers, as_of + horizon_days, rng)
    main = {c: _features(daily, first, death, c, horizon_days, rng) for c in cutoff_days}
    scoring = _features(daily, first, death, as_of, horizon_days, rng).drop(
        columns=["label_is_churned", "label_net_spend"]
    )
    frames = list(main.values())
    if short_horizon_days is not None:
        for cutoff in (as_of - short_horizon_days - 30 * i for i in reversed(range(short_cutoffs))):
            features = main.get(cutoff)
            if features is None:
                features = _features(daily, first, death, cutoff, horizon_days, rng)
            frames.append(_with_labels(features, daily, cutoff, short_horizon_days))
    if signal_since_days_before is not None:
        since = as_of - signal_since_days_before
        frames = [_with_new_signal(f, death, rate, _day(f), since, seed) for f in frames]
        scoring = _with_new_signal(scoring, death, rate, as_of, since, seed)
    training = pd.concat(frames)
    return SimulatedTables(training.reset_index(drop=True), scoring, horizon_days)


def write_tables(con: duckdb.DuckDBPyConnection, tables: SimulatedTables) -> None:
    con.execute("create schema if not exists ml")
    for name, frame in (("ml_training_examples", tables.training), ("ml_scoring_features", tables.scoring)):
        con.register("_frame", frame)
        con.execute(
            f"create or replace table ml.{name} as select * replace "
            "(cast(person_id as varchar) as person_id, cast(cutoff_date as date) as cutoff_date, "
            "cast(horizon_days as integer) as horizon_days) from _frame"
        )
        con.unregister("_frame")
