"""The synthetic benchmark's full-information reference: how well the generator's own model ranks people when
it knows the population and sees everything each person did before the as-of.

The oracle knows each person's true rates; the population reference (bench_ml.population_reference) knows
only the population and each person's completed orders. This one knows the population too, but reads every
stream the generator ties to the latent rates: every order (a cancelled or refunded one is still a sign of
life), the browse sessions (registered customers browse at BROWSE_PER_PURCHASE x lambda +
BROWSE_BASE_PER_DAY per day until BROWSE_TAIL_DAYS after they churn), and each delivered email with whether
a human opened it (probability engagement x exp(-days since churning / FADE_DAYS)) and clicked (CLICK_BASE +
CLICK_PER_ENGAGEMENT x engagement), where the engagement logit is ENGAGEMENT_BASE + ENGAGEMENT_SLOPE x the
standardized log purchase rate + Normal(0, ENGAGEMENT_NOISE) noise. Each person's posterior is exact on a grid
over (lambda, mu, engagement logit, the day they churned): what ANY model of the observed data can know about
them at best, so the reference says how much of the oracle the data allows.

It is a reference, not a strict bound. It reads the generator's true event streams, so it knows which web
sessions were browsing (not research before a purchase) and whose events belong together, which the
warehouse has to infer; it leaves out unsubscribes (which also depend on engagement); and its order value is
the population reference's Gamma-Gamma posterior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from datagen import esp, web
from datagen.config import GeneratorConfig
from datagen.generator import build_world, simulate_chunks
from datagen.persons import (
    DROPOUT_BETA,
    DROPOUT_S,
    ENGAGEMENT_BASE,
    ENGAGEMENT_NOISE,
    ENGAGEMENT_SLOPE,
    PURCHASE_ALPHA,
    PURCHASE_R,
    Kind,
)
from ml.btyd.individual import IndividualForecast, forecast

FloatArray = npt.NDArray[np.float64]
DAY = 86_400

# Rates per day, log-spaced past where the Gamma priors put any mass (as the population reference's grid);
# the engagement logit's grid covers its prior (sd about 1.2 around -1.4) with room.
LAMBDA_GRID = np.geomspace(1e-5, 0.3, 64)
MU_GRID = np.geomspace(1e-6, 0.05, 32)
ENGAGEMENT_LOGIT_GRID = np.linspace(-6.0, 3.5, 48)


@dataclass(frozen=True)
class PersonStreams:
    """What one person did before the as-of, in days on the reference's grid (day 0 = its first day)."""

    acquired: float  # the first order, whatever its outcome
    orders: FloatArray  # every order's day, the first one included
    browse: FloatArray | None  # browse sessions' days; None for a person with no shop account (no browsing)
    sends: FloatArray  # the campaign day of every delivered email
    opened: npt.NDArray[np.bool_]  # per send: a human opened it
    clicks: int  # sends clicked


@dataclass(frozen=True)
class ObservedStreams:
    """Each requested person's streams, and the buyers' log purchase rates' mean and standard deviation
    (the generator standardizes the log rate over its buyers before tying engagement to it)."""

    people: list[PersonStreams]
    log_rate_mean: float
    log_rate_sd: float


def observed_streams(
    config: GeneratorConfig, person_index: npt.NDArray[np.int64], first_day: int
) -> ObservedStreams:
    """Replay the generator (deterministic) and collect the streams of the persons at ``person_index``
    (their index in the generator's Persons; true person P000000001 is 0). ``first_day`` is the epoch day
    that becomes day 0."""
    world = build_world(config)
    cutoff = world.timeline.cutoff
    wanted = np.zeros(world.persons.n, dtype=bool)
    wanted[person_index] = True

    def days(seconds: npt.NDArray[np.int64]) -> FloatArray:
        return seconds / DAY - first_day

    campaign_day = days(world.campaigns.at)
    order_parts, browse_parts, send_parts, open_parts, click_parts = [], [], [], [], []
    for chunk in simulate_chunks(config, world):
        sim = chunk.orders
        keep = wanted[sim.person] & (sim.at < cutoff)
        order_parts.append((sim.person[keep], days(sim.at[keep])))
        sessions = chunk.web.sessions
        keep = wanted[sessions.person] & (sessions.kind == web.BROWSE) & (sessions.anchor < cutoff)
        browse_parts.append((sessions.person[keep], days(sessions.anchor[keep])))
        events = chunk.esp.events
        mine = wanted[events.person]
        human = events.user_agent == 1
        for parts, event_type, also in (
            (send_parts, esp.DELIVERED, True),
            (open_parts, esp.OPEN, human),
            (click_parts, esp.CLICK, human),
        ):
            keep = mine & (events.event_type == event_type) & also
            parts.append((events.person[keep], events.campaign[keep]))

    def grouped(parts: list[tuple[np.ndarray, np.ndarray]]) -> dict[int, np.ndarray]:
        person = np.concatenate([p for p, _ in parts])
        value = np.concatenate([v for _, v in parts])
        order = np.argsort(person, kind="stable")
        person, value = person[order], value[order]
        starts = np.flatnonzero(np.r_[True, person[1:] != person[:-1]]) if person.size else np.array([], int)
        return {int(person[s]): v for s, v in zip(starts, np.split(value, starts[1:]), strict=True)}

    orders_of, browse_of = grouped(order_parts), grouped(browse_parts)
    sends_of, opens_of, clicks_of = grouped(send_parts), grouped(open_parts), grouped(click_parts)
    empty = np.array([], dtype=np.float64)
    people = []
    for index in person_index.tolist():
        sent = sends_of.get(index, np.array([], dtype=np.int32))
        people.append(
            PersonStreams(
                acquired=float(days(np.array(world.persons.acquired_at[index]))),
                orders=np.sort(orders_of.get(index, empty)),
                browse=browse_of.get(index, empty) if world.persons.kind[index] == Kind.REGISTERED else None,
                sends=campaign_day[sent],
                opened=np.isin(sent, opens_of.get(index, [])),
                clicks=int(np.isin(clicks_of.get(index, []), sent).sum()),
            )
        )
    buyers = world.persons.lam > 0
    log_rate = np.log(world.persons.lam[buyers])
    return ObservedStreams(people, float(log_rate.mean()), float(log_rate.std()))


def _log_matmul_exp(left: FloatArray, right: FloatArray) -> FloatArray:
    """log(exp(left) @ exp(right)) without overflow: each row of ``left`` and column of ``right`` is scaled
    by its own maximum first (rows with no finite entry stay -inf)."""
    row = np.max(left, axis=1, keepdims=True)
    row = np.where(np.isfinite(row), row, 0.0)
    column = np.max(right, axis=0, keepdims=True)
    with np.errstate(divide="ignore"):
        return np.log(np.exp(left - row) @ np.exp(right - column)) + row + column


def full_information_forecast(
    streams: ObservedStreams,
    as_of_day: int,
    horizon_days: int,
    season: FloatArray,
    completed_share: float,
    lam: FloatArray = LAMBDA_GRID,
    mu: FloatArray = MU_GRID,
) -> IndividualForecast:
    """Each person's posterior over (lambda, mu, engagement logit, churn day) given their streams, and the
    known-rate forecast (``ml.btyd.individual.forecast``: completed purchases at lambda x completed_share)
    averaged over it. ``season`` is the relative purchase intensity of every grid day up to the horizon's
    end; ``lam`` and ``mu`` the grid points of the rates (per day), weighted by the generator's priors."""
    cumulative = np.concatenate([[0.0], np.cumsum(season, dtype=np.float64)])

    def season_mass_to(day: FloatArray) -> FloatArray:  # the integrated season from day 0 to a fractional day
        whole = np.floor(day).astype(np.int64)
        return cumulative[whole] + (day - whole) * season[whole]

    log_prior = (
        np.log(stats.gamma.pdf(lam, PURCHASE_R, scale=1 / PURCHASE_ALPHA) * lam)[:, None]
        + np.log(stats.gamma.pdf(mu, DROPOUT_S, scale=1 / DROPOUT_BETA) * mu)[None, :]
    )
    logit = ENGAGEMENT_LOGIT_GRID
    engagement = 1.0 / (1.0 + np.exp(-logit))
    standardized = (np.log(lam) - streams.log_rate_mean) / streams.log_rate_sd
    # p(engagement logit | lambda) as grid weights: (lambda, logit).
    log_engagement_prior = np.log(
        stats.norm.pdf(
            logit[None, :], ENGAGEMENT_BASE + ENGAGEMENT_SLOPE * standardized[:, None], ENGAGEMENT_NOISE
        )
        * (logit[1] - logit[0])
        + 1e-300
    )
    grid_lam, grid_mu = np.meshgrid(lam * completed_share, mu, indexing="ij")
    alive_now = forecast(grid_lam.ravel(), grid_mu.ravel(), np.full(grid_lam.size, as_of_day - 1), as_of_day,
                         horizon_days, season)  # fmt: skip
    none_if_alive = alive_now.p_no_purchase.reshape(grid_lam.shape)
    buys_if_alive = alive_now.expected_purchases.reshape(grid_lam.shape)
    browse_rate = web.BROWSE_PER_PURCHASE * lam + web.BROWSE_BASE_PER_DAY
    click_base, click_slope = esp.CLICK_BASE, esp.CLICK_PER_ENGAGEMENT

    p_alive, p_none, buys = (np.empty(len(streams.people)) for _ in range(3))
    for k, person in enumerate(streams.people):
        a = person.acquired
        churn_day = np.arange(int(np.floor(a)), as_of_day)  # churning during one of these days
        churned_at = churn_day + 0.5
        repeat = max(person.orders.size - 1, 0)
        last_seen = person.orders[-1] if person.orders.size else a
        # Orders: a Poisson process at lambda x season from the acquisition to the churn (or the as-of).
        exposure = season_mass_to(np.maximum(churned_at, a)) - season_mass_to(np.array(a))
        log_churned = repeat * np.log(lam)[:, None] - lam[:, None] * exposure[None, :]
        log_churned[:, churned_at < last_seen] = -np.inf
        log_alive = repeat * np.log(lam) - lam * (cumulative[as_of_day] - season_mass_to(np.array(a)))
        if person.browse is not None:
            browsing_until = np.minimum(churned_at + web.BROWSE_TAIL_DAYS, as_of_day) - a
            log_churned += (
                person.browse.size * np.log(browse_rate)[:, None]
                - browse_rate[:, None] * browsing_until[None, :]
            )
            if person.browse.size:
                log_churned[:, churned_at + web.BROWSE_TAIL_DAYS < person.browse.max()] = -np.inf
            log_alive += person.browse.size * np.log(browse_rate) - browse_rate * (as_of_day - a)
        if person.sends.size:
            opened, opens = person.opened, int(person.opened.sum())
            clicks = person.clicks
            log_clicks = clicks * np.log(click_base + click_slope * engagement) + (opens - clicks) * np.log(
                1 - click_base - click_slope * engagement
            )
            # Human opens fade after the churn: probability engagement x fade per send, (logit, churn day).
            lag = np.maximum(person.sends[None, :] - churned_at[:, None], 0.0)
            fade = np.exp(-lag / esp.FADE_DAYS)
            log_email = (
                opens * np.log(engagement)[:, None]
                - (lag[:, opened].sum(axis=1) / esp.FADE_DAYS)[None, :]
                + np.log1p(-engagement[:, None, None] * fade[None, :, ~opened]).sum(axis=2)
                + log_clicks[:, None]
            )
            log_email_alive = (
                opens * np.log(engagement) + (~opened).sum() * np.log1p(-engagement) + log_clicks
            )[:, None]
            log_churned = log_churned + _log_matmul_exp(log_engagement_prior, log_email)
            log_alive = log_alive + _log_matmul_exp(log_engagement_prior, log_email_alive)[:, 0]
        # The churn day: exponential with rate mu from the acquisition, (mu, churn day).
        log_churn_day = -mu[:, None] * (churn_day[None, :] - np.floor(a)) + np.log(-np.expm1(-mu))[:, None]
        log_dead = log_prior + _log_matmul_exp(log_churned, log_churn_day.T)
        log_live = log_prior + log_alive[:, None] - mu[None, :] * (as_of_day - np.floor(a))
        top = max(log_dead.max(), log_live.max())
        dead, live = np.exp(log_dead - top), np.exp(log_live - top)
        total = dead.sum() + live.sum()
        p_alive[k] = live.sum() / total
        p_none[k] = 1.0 - (live * (1.0 - none_if_alive)).sum() / total
        buys[k] = (live * buys_if_alive).sum() / total
    return IndividualForecast(p_alive=p_alive, p_no_purchase=p_none, expected_purchases=buys)
