"""The synthetic benchmark's full-information reference: its replay of the generator, and its posterior,
checked against the known-rate forecast and against people simulated from the model it assumes."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.full_information import ObservedStreams, PersonStreams, full_information_forecast, observed_streams
from datagen import esp, web
from datagen.config import GeneratorConfig
from datagen.generator import generate
from datagen.persons import (
    DROPOUT_BETA,
    DROPOUT_S,
    ENGAGEMENT_BASE,
    ENGAGEMENT_NOISE,
    ENGAGEMENT_SLOPE,
    PURCHASE_ALPHA,
    PURCHASE_R,
)
from ml.btyd.individual import forecast
from ml.metrics import roc_auc

AS_OF, HORIZON = 400, 180
FLAT = np.ones(AS_OF + HORIZON)
NO_EMAIL = np.array([], dtype=np.float64)


def person(
    orders: list[float],
    browse: list[float] | None = None,
    sends: list[float] | None = None,
    opened: tuple[int, ...] = (),
) -> PersonStreams:
    sent = np.array(sends or [], dtype=np.float64)
    return PersonStreams(
        acquired=orders[0],
        orders=np.array(orders, dtype=np.float64),
        browse=None if browse is None else np.array(browse, dtype=np.float64),
        sends=sent,
        opened=np.isin(np.arange(sent.size), opened),
        clicks=0,
    )


def streams(*people: PersonStreams) -> ObservedStreams:
    return ObservedStreams(list(people), log_rate_mean=np.log(0.01) - 0.6, log_rate_sd=1.2)


def test_with_known_rates_and_orders_alone_it_is_the_individual_forecast() -> None:
    lam, mu = 0.02, 0.003
    # The last order late on day 250: the known-rate forecast's quiet stretch starts with day 251.
    history = person([50.0, 120.0, 250.99])
    alone = full_information_forecast(
        streams(history), AS_OF, HORIZON, FLAT, 1.0, np.array([lam]), np.array([mu])
    )
    known = forecast(np.array([lam]), np.array([mu]), np.array([250]), AS_OF, HORIZON, FLAT)
    assert alone.p_alive[0] == pytest.approx(known.p_alive[0], rel=1e-9)
    assert alone.p_no_purchase[0] == pytest.approx(known.p_no_purchase[0], rel=1e-9)
    assert alone.expected_purchases[0] == pytest.approx(known.expected_purchases[0], rel=1e-9)


def test_a_recent_human_open_or_browse_session_says_alive_and_ignored_emails_say_churned() -> None:
    quiet = [20.0, 60.0, 150.0]  # no order for 250 days
    sends = [AS_OF - 7.0 * k for k in range(20, 0, -1)]
    cases = {
        "orders only": person(quiet),
        "ignored emails": person(quiet, sends=sends),
        "opened the last email": person(quiet, sends=sends, opened=(19,)),
        "browsed 5 days ago": person(quiet, browse=[AS_OF - 5.0]),
    }
    result = full_information_forecast(streams(*cases.values()), AS_OF, HORIZON, FLAT, 1.0)
    alive = dict(zip(cases, result.p_alive, strict=True))
    assert alive["ignored emails"] < alive["orders only"] < alive["opened the last email"]
    assert alive["orders only"] < alive["browsed 5 days ago"]


def simulate(n: int, rng: np.random.Generator) -> tuple[ObservedStreams, np.ndarray, np.ndarray]:
    """People drawn from the model the reference assumes (flat season, everyone browses and is emailed every
    week for 26 weeks): their streams, whether they buy in the horizon, and how often."""
    lam = rng.gamma(PURCHASE_R, 1 / PURCHASE_ALPHA, n)
    mu = rng.gamma(DROPOUT_S, 1 / DROPOUT_BETA, n)
    log_lam = np.log(lam)
    mean, sd = float(log_lam.mean()), float(log_lam.std())
    logit = ENGAGEMENT_BASE + ENGAGEMENT_SLOPE * (log_lam - mean) / sd + rng.normal(0, ENGAGEMENT_NOISE, n)
    engagement = 1 / (1 + np.exp(-logit))
    acquired = rng.uniform(0, AS_OF - 60, n)
    churn = acquired + rng.exponential(1 / mu)
    sends = np.arange(AS_OF - 26 * 7, AS_OF, 7.0)
    people, future = [], np.zeros(n)
    for i in range(n):
        alive_until = min(churn[i], AS_OF)
        repeat = rng.uniform(acquired[i], alive_until, rng.poisson(lam[i] * (alive_until - acquired[i])))
        browse_until = min(churn[i] + web.BROWSE_TAIL_DAYS, AS_OF)
        rate = web.BROWSE_PER_PURCHASE * lam[i] + web.BROWSE_BASE_PER_DAY
        browse = rng.uniform(acquired[i], browse_until, rng.poisson(rate * (browse_until - acquired[i])))
        fade = np.exp(-np.maximum(sends - churn[i], 0) / esp.FADE_DAYS)
        opened = rng.random(sends.size) < engagement[i] * fade
        clicked = rng.random(sends.size) < esp.CLICK_BASE + esp.CLICK_PER_ENGAGEMENT * engagement[i]
        people.append(
            PersonStreams(
                acquired=float(acquired[i]),
                orders=np.sort(np.r_[acquired[i], repeat]),
                browse=browse,
                sends=sends,
                opened=opened,
                clicks=int((opened & clicked).sum()),
            )
        )
        future[i] = rng.poisson(lam[i] * max(min(churn[i], AS_OF + HORIZON) - AS_OF, 0.0))
    return ObservedStreams(people, mean, sd), future == 0, future


def test_on_people_drawn_from_its_model_it_is_calibrated_and_the_streams_sharpen_it() -> None:
    observed, none, future = simulate(2500, np.random.default_rng(7))
    full = full_information_forecast(observed, AS_OF, HORIZON, FLAT, 1.0)
    # P(no purchase) and the expected purchases match what happened, within sampling error.
    assert abs(full.p_no_purchase.mean() - none.mean()) < 3 * np.sqrt(
        none.mean() * (1 - none.mean()) / none.size
    )
    assert full.expected_purchases.sum() == pytest.approx(future.sum(), rel=0.08)
    # The same people seen through their orders alone rank worse on who buys.
    orders_only = ObservedStreams(
        [
            PersonStreams(p.acquired, p.orders, None, NO_EMAIL, NO_EMAIL.astype(bool), 0)
            for p in observed.people
        ],
        observed.log_rate_mean,
        observed.log_rate_sd,
    )
    alone = full_information_forecast(orders_only, AS_OF, HORIZON, FLAT, 1.0)
    assert roc_auc(none, full.p_no_purchase) > roc_auc(none, alone.p_no_purchase) + 0.01


def test_the_replay_finds_what_the_generator_wrote_for_each_person(tmp_path: Path) -> None:
    config = GeneratorConfig(customers=300, seed=5, out=tmp_path / "raw", as_of=date(2025, 12, 31))
    generate(config)
    persons = pd.read_parquet(tmp_path / "raw" / "_truth" / "persons.parquet")
    buyers = persons.index[persons["orders_before_as_of"] > 0].to_numpy()
    first_day = 20_000
    replayed = observed_streams(config, buyers, first_day)
    assert [p.orders.size for p in replayed.people] == persons.loc[buyers, "orders_before_as_of"].tolist()
    epoch = pd.Timestamp(0, tz="UTC")
    acquired = (persons.loc[buyers, "acquired_at"] - epoch).dt.total_seconds().to_numpy() / 86_400 - first_day
    np.testing.assert_allclose([p.acquired for p in replayed.people], acquired, atol=1 / 86_400)
    assert all(p.orders[0] == pytest.approx(p.acquired) for p in replayed.people)  # the first order acquires
    # Browsing only with a shop account; opens only of delivered emails, clicks only of opened ones.
    has_account = persons.loc[buyers, "has_shop_account"].to_numpy()
    assert [p.browse is not None for p in replayed.people] == has_account.tolist()
    assert all(p.opened.size == p.sends.size and p.clicks <= p.opened.sum() for p in replayed.people)
    assert sum(p.sends.size for p in replayed.people) > 0 and sum(p.opened.sum() for p in replayed.people) > 0
