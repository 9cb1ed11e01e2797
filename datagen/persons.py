"""Latent person model: who exists, and the hidden parameters that drive every source.

Buying follows Pareto/NBD (purchase rate lambda ~ Gamma(r, alpha), dropout rate mu ~ Gamma(s, beta), lifetime
~ Exponential(mu)) and spend follows Gamma-Gamma (nu ~ Gamma(q, gamma), order value ~ Gamma(p, nu)), so
BTYD baselines and learned models have a real signal to recover.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datagen import fmt, vocab
from datagen.config import GeneratorConfig, Timeline


class Kind(IntEnum):
    REGISTERED = 0  # shop account, buys, browses logged in on 1-3 devices
    GUEST = 1  # buys via guest checkout only: email on orders, no account, no web identity
    PROSPECT_CRM = 2  # CRM record, never buys
    PROSPECT_ESP = 3  # newsletter signup: only in ESP and consent data, never buys
    ANONYMOUS = 4  # web visitor that never identifies
    BOT = 5  # crawler; its web events are a defect


KIND_NAMES: tuple[str, ...] = ("registered", "guest", "prospect_crm", "prospect_esp", "anonymous", "bot")
EMAIL_KIND_SHARES: tuple[float, ...] = (0.55, 0.12, 0.15, 0.18)

PURCHASE_R, PURCHASE_ALPHA = 0.8, 80.0  # lambda per day: mean 0.01 (about 3.7 orders a year while alive)
DROPOUT_S, DROPOUT_BETA = 0.9, 600.0  # mu per day: mean lifetime of a couple of years, long tail
SPEND_P, SPEND_Q, SPEND_GAMMA = 6.0, 4.0, 37.5  # E[order value] = p * gamma / (q - 1) = 75 USD
# A buyer's email engagement logit: BASE + SLOPE x (their log purchase rate, standardized over the buyers) +
# Normal(0, NOISE) noise.
ENGAGEMENT_BASE, ENGAGEMENT_SLOPE, ENGAGEMENT_NOISE = -1.4, 1.1, 0.5
IN_CRM_SHARE = {Kind.REGISTERED: 0.85, Kind.GUEST: 0.30, Kind.PROSPECT_CRM: 1.0}
APPLE_MAIL_SHARE = 0.30
SCANNER_SHARE = 0.03
DEAD_ADDRESS_SHARE = 0.02
MAX_DEVICES = 3
INF = np.int64(2**62)
DAY = 86_400


@dataclass(frozen=True)
class Persons:
    """Column arrays over all persons: index i is true person ``P{i+1:09d}``."""

    n_email: int
    kind: np.ndarray  # int8 Kind
    acquired_at: np.ndarray  # int64 seconds
    lam: np.ndarray  # purchases per day while alive (0 for non-buyers)
    mu: np.ndarray  # dropout rate per day
    death_at: np.ndarray  # int64 seconds; INF-capped; truncated at an erasure request
    nu: np.ndarray  # Gamma-Gamma spend rate
    engagement: np.ndarray  # probability of a human open per delivered email while alive
    pref_cat: np.ndarray  # int8 dominant category
    cat_weights: np.ndarray  # float32 (n, n_categories) category preferences
    country: np.ndarray  # int8 index into vocab.COUNTRIES
    first: np.ndarray  # int16 index into vocab.FIRST_NAMES
    last: np.ndarray  # int16 index into vocab.LAST_NAMES
    email_style: np.ndarray  # int8
    domain: np.ndarray  # int8 index into vocab.EMAIL_DOMAINS
    in_crm: np.ndarray  # bool
    apple_mail: np.ndarray  # bool: Apple Mail Privacy Protection opens every delivered email
    scanner: np.ndarray  # bool: a corporate link scanner opens every delivered email
    address_dead_at: np.ndarray  # int64: from then on the mailbox hard-bounces (INF = never)
    n_devices: np.ndarray  # int8 web devices (anonymous ids); 0 for persons without web activity
    device_start: np.ndarray  # int64 (n, MAX_DEVICES), ascending, INF where the device does not exist
    device_ua: (
        np.ndarray
    )  # int8 (n, MAX_DEVICES) index into vocab.BROWSER_USER_AGENTS (bots: BOT_USER_AGENTS)
    mail_ua: np.ndarray  # int8 index into vocab.MAIL_CLIENT_USER_AGENTS
    erasure_at: np.ndarray  # int64 (INF = none)
    access_at: np.ndarray  # int64 (INF = none)

    @property
    def n(self) -> int:
        return len(self.kind)

    @property
    def has_email(self) -> np.ndarray:
        return self.kind <= Kind.PROSPECT_ESP

    @property
    def is_buyer(self) -> np.ndarray:
        return self.kind <= Kind.GUEST


def _exact_kinds(n: int, shares: tuple[float, ...], rng: np.random.Generator) -> np.ndarray:
    counts = np.floor(np.asarray(shares) * n).astype(np.int64)
    counts[0] += n - counts.sum()
    return rng.permutation(np.repeat(np.arange(len(shares), dtype=np.int8), counts))


def _pick_times(
    rng: np.random.Generator, eligible: np.ndarray, count: int, lo: np.ndarray, hi: int
) -> np.ndarray:
    """INF everywhere except ``count`` eligible persons, who get a time uniform in [lo, hi)."""
    out = np.full(len(eligible), INF, dtype=np.int64)
    cand = np.flatnonzero(eligible)
    count = min(count, len(cand))
    if count:
        chosen = np.sort(rng.choice(cand, size=count, replace=False))
        span = np.maximum(hi - lo[chosen], 1)
        out[chosen] = lo[chosen] + (rng.random(count) * span).astype(np.int64)
    return out


def build_persons(config: GeneratorConfig, tl: Timeline, rng: np.random.Generator) -> Persons:
    n_email = config.customers
    n_anon = int(round(config.anonymous_share * n_email))
    n_bot = int(round(config.defects.bot_visitor * n_email))
    n = n_email + n_anon + n_bot
    kind = np.concatenate(
        [
            _exact_kinds(n_email, EMAIL_KIND_SHARES, rng),
            np.full(n_anon, Kind.ANONYMOUS, dtype=np.int8),
            np.full(n_bot, Kind.BOT, dtype=np.int8),
        ]
    )
    buyer = kind <= Kind.GUEST
    has_email = kind <= Kind.PROSPECT_ESP

    # Acquisition spread over the history with mild growth (density rising towards as_of).
    span = tl.cutoff - tl.start
    acquired = tl.start + (rng.random(n) ** (1 / 1.3) * (span - 3600)).astype(np.int64)
    anon = kind == Kind.ANONYMOUS
    bot = kind == Kind.BOT
    acquired[anon] = tl.cutoff - (rng.random(int(anon.sum())) * min(365, config.history_days) * DAY).astype(
        np.int64
    )
    acquired[bot] = tl.cutoff - (rng.random(int(bot.sum())) * min(180, config.history_days) * DAY).astype(
        np.int64
    )

    lam = np.where(buyer, rng.gamma(PURCHASE_R, 1 / PURCHASE_ALPHA, n), 0.0)
    mu = rng.gamma(DROPOUT_S, 1 / DROPOUT_BETA, n)
    lifetime_days = np.minimum(rng.exponential(1.0, n) / mu, 100_000.0)
    death = acquired + (lifetime_days * DAY).astype(np.int64)
    nu = rng.gamma(SPEND_Q, 1 / SPEND_GAMMA, n)

    # Engagement rises with the purchase rate, so email behaviour predicts buying (and vice versa).
    log_lam = np.log(np.where(buyer, lam, 1.0))
    z = np.zeros(n)
    if buyer.any():
        z[buyer] = (log_lam[buyer] - log_lam[buyer].mean()) / max(float(log_lam[buyer].std()), 1e-9)
    logit = np.where(
        buyer,
        ENGAGEMENT_BASE + ENGAGEMENT_SLOPE * z + rng.normal(0, ENGAGEMENT_NOISE, n),
        -2.0 + rng.normal(0, 0.8, n),
    )
    engagement = np.where(has_email, 1 / (1 + np.exp(-logit)), 0.0)

    n_cat = len(vocab.CATEGORIES)
    demand = np.array([c[1] for c in vocab.CATEGORIES])
    pref = rng.choice(n_cat, size=n, p=demand / demand.sum()).astype(np.int8)
    conc = np.full((n, n_cat), 0.4)
    conc[np.arange(n), pref] += 6.0
    g = rng.gamma(conc).astype(np.float32)
    cat_weights = g / g.sum(axis=1, keepdims=True)

    cw = np.array([c[1] for c in vocab.COUNTRIES])
    country = rng.choice(len(cw), size=n, p=cw / cw.sum()).astype(np.int8)
    first = rng.integers(0, len(vocab.FIRST_NAMES), n).astype(np.int16)
    last = rng.integers(0, len(vocab.LAST_NAMES), n).astype(np.int16)
    email_style = rng.choice(5, size=n, p=[0.4, 0.15, 0.2, 0.15, 0.1]).astype(np.int8)
    domain = rng.integers(0, len(vocab.EMAIL_DOMAINS), n).astype(np.int8)

    in_crm = np.zeros(n, dtype=bool)
    u = rng.random(n)
    for k, share in IN_CRM_SHARE.items():
        in_crm |= (kind == k) & (u < share)

    apple = has_email & (rng.random(n) < APPLE_MAIL_SHARE)
    scanner = has_email & ~apple & (rng.random(n) < SCANNER_SHARE)
    dead = has_email & (rng.random(n) < DEAD_ADDRESS_SHARE)
    dead_at = np.where(
        dead,
        np.maximum(acquired, tl.email_start)
        + (rng.random(n) * (tl.cutoff + 30 * DAY - tl.email_start)).astype(np.int64),
        INF,
    )

    erasure = _pick_times(
        rng,
        has_email & (acquired < tl.cutoff - 2 * DAY),
        int(round(config.erasure_share * n_email)),
        np.maximum(acquired, tl.cutoff - 365 * DAY),
        tl.cutoff,
    )
    access = _pick_times(
        rng,
        has_email & (acquired < tl.cutoff - 2 * DAY),
        int(round(config.access_share * n_email)),
        np.maximum(acquired, tl.cutoff - 365 * DAY),
        tl.cutoff,
    )
    # Someone who asks to be forgotten stops being a customer.
    death = np.minimum(death, erasure)

    reg = kind == Kind.REGISTERED
    u = rng.random(n)
    n_devices = np.where(reg, 1 + (u > 0.55) + (u > 0.85), np.where(anon | bot, 1, 0)).astype(np.int8)
    active_end = np.minimum(death, tl.cutoff)
    starts = acquired[:, None] + (
        rng.random((n, MAX_DEVICES)) * np.maximum(active_end - acquired, 1)[:, None]
    ).astype(np.int64)
    starts[:, 0] = acquired
    starts = np.sort(starts, axis=1)
    starts[np.arange(MAX_DEVICES)[None, :] >= n_devices[:, None]] = INF
    device_ua = rng.integers(0, len(vocab.BROWSER_USER_AGENTS), (n, MAX_DEVICES)).astype(np.int8)
    device_ua[bot] = rng.integers(0, len(vocab.BOT_USER_AGENTS), (int(bot.sum()), MAX_DEVICES)).astype(
        np.int8
    )
    mail_ua = rng.integers(0, len(vocab.MAIL_CLIENT_USER_AGENTS), n).astype(np.int8)

    return Persons(
        n_email=n_email,
        kind=kind,
        acquired_at=acquired,
        lam=lam,
        mu=mu,
        death_at=death,
        nu=nu,
        engagement=engagement,
        pref_cat=pref,
        cat_weights=cat_weights,
        country=country,
        first=first,
        last=last,
        email_style=email_style,
        domain=domain,
        in_crm=in_crm,
        apple_mail=apple,
        scanner=scanner,
        address_dead_at=dead_at,
        n_devices=n_devices,
        device_start=starts,
        device_ua=device_ua,
        mail_ua=mail_ua,
        erasure_at=erasure,
        access_at=access,
    )


def person_ids(idx: np.ndarray) -> pa.StringArray:
    return fmt.padded_ids(np.asarray(idx, dtype=np.int64) + 1, "P", 9)


_FIRST = fmt.vocabulary(vocab.FIRST_NAMES)
_LAST = fmt.vocabulary(vocab.LAST_NAMES)
_DOMAINS = fmt.vocabulary(vocab.EMAIL_DOMAINS)


def canonical_emails(p: Persons, idx: np.ndarray) -> pa.StringArray:
    """The (normalized, valid, unique) email of each person in ``idx``; the number makes it unique."""
    idx = np.asarray(idx, dtype=np.int64)
    first = _FIRST.take(pa.array(p.first[idx].astype(np.int32)))
    last = _LAST.take(pa.array(p.last[idx].astype(np.int32)))
    dom = _DOMAINS.take(pa.array(p.domain[idx].astype(np.int32)))
    num = fmt.integers(idx + 1)
    initial = pc.utf8_slice_codeunits(first, 0, 1)
    style = p.email_style[idx]
    local = pc.case_when(
        pc.make_struct(*[pa.array(style == s) for s in range(4)]),
        pc.binary_join_element_wise(first, ".", last, num, ""),
        pc.binary_join_element_wise(first, "_", last, num, ""),
        pc.binary_join_element_wise(initial, last, num, ""),
        pc.binary_join_element_wise(first, num, ""),
        pc.binary_join_element_wise(last, ".", first, num, ""),
    )
    return pc.binary_join_element_wise(local, "@", dom, "")


def chunk_emails(p: Persons, lo: int, hi: int) -> pa.Array:
    """Canonical email per person in [lo, hi), null for persons without one."""
    emails = canonical_emails(p, np.arange(lo, hi, dtype=np.int64))
    return pc.if_else(pa.array(p.has_email[lo:hi]), emails, pa.scalar(None, pa.string()))
