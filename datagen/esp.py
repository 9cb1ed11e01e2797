"""Consent, ESP campaign events and privacy requests.

Consent decides who receives the weekly campaigns; opens and clicks follow each person's engagement, which
rises with their purchase rate and fades after they churn. Unsubscribes and spam complaints feed back into
consent_events, hard bounces stop further sends, and erasure requests stop all email.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datagen import defects as d
from datagen import fmt, ids, vocab
from datagen.context import Chunk
from datagen.persons import INF, Kind

DAY = 86_400
EVENT_TYPES = ("sent", "delivered", "open", "click", "bounce", "unsubscribe", "spam_complaint")
SENT, DELIVERED, OPEN, CLICK, BOUNCE, UNSUBSCRIBE, SPAM = range(7)
OPT_IN_SHARE = {Kind.REGISTERED: 0.7, Kind.GUEST: 0.35, Kind.PROSPECT_CRM: 0.4, Kind.PROSPECT_ESP: 1.0}
OPT_IN_SOURCE = {Kind.REGISTERED: 0, Kind.GUEST: 1, Kind.PROSPECT_CRM: 2, Kind.PROSPECT_ESP: 3}
CONSENT_SOURCES = (
    "shop_signup",
    "checkout",
    "crm_import",
    "newsletter_form",
    "preference_center",
    "esp_unsubscribe",
    "esp_spam_complaint",
)
PREFERENCE_CENTER, ESP_UNSUBSCRIBE, ESP_SPAM = 4, 5, 6
AUDIENCE_SHARE = 0.4  # each campaign targets a segment of the opted-in list
SOFT_BOUNCE = 0.01
SPAM_RATE = 0.0006
FADE_DAYS = 45.0
CLICK_BASE, CLICK_PER_ENGAGEMENT = 0.12, 0.35  # P(click | human open) = base + per-engagement x engagement
TS_MIX = np.array([0.85, 0, 0.15, 0, 0, 0, 0, 0, 0, 0])
ESP_NAMESPACE = 2


@dataclass(frozen=True)
class Campaigns:
    at: np.ndarray
    theme: np.ndarray  # category index of the campaign's landing page
    ids: pa.StringArray


def campaigns(ch_tl_start: int, cutoff: int) -> Campaigns:
    """Weekly campaigns, Tuesdays 14:00 UTC, from the start of the email history to the cutoff."""
    first_day = ch_tl_start // DAY
    first_tuesday = first_day + (1 - (first_day + 3) % 7) % 7  # epoch day 0 was a Thursday
    at = np.arange(first_tuesday * DAY + 14 * 3600, cutoff, 7 * DAY, dtype=np.int64)
    theme = np.arange(len(at)) % len(vocab.CATEGORIES)
    names = pc.binary_join_element_wise("cmp_", pc.replace_substring(fmt.dates(at // DAY), "-", ""), "")
    return Campaigns(at=at, theme=theme, ids=names)


@dataclass(frozen=True)
class EspEvents:
    """The ESP events drawn before the as-of, before formatting and defects: what truly happened."""

    person: np.ndarray  # person index (into Persons)
    event_type: np.ndarray  # int8 index into EVENT_TYPES
    at: np.ndarray  # int64 seconds
    campaign: np.ndarray  # int32 index into Campaigns
    user_agent: np.ndarray  # int8: 0 none, 1 mail client (a human), 2 Apple MPP, 3 scanner


@dataclass(frozen=True)
class EspOutput:
    esp: pa.Table
    consent: pa.Table
    privacy: pa.Table
    opted_out: np.ndarray  # per chunk person: latest email consent at as_of is opted_out
    hard_bounced: np.ndarray
    events: EspEvents


def build(ch: Chunk, camp: Campaigns, crm_record: np.ndarray) -> EspOutput:
    p, rng, tl = ch.persons, ch.rng, ch.tl
    kind = p.kind[ch.lo : ch.hi]
    n = ch.size
    has_email = kind <= Kind.PROSPECT_ESP
    acq = p.acquired_at[ch.lo : ch.hi]

    # ---- consent timeline set up front: opt-in at signup, preference-centre opt-out and re-opt-in
    share = np.zeros(n)
    source = np.zeros(n, dtype=np.int64)
    for k, s in OPT_IN_SHARE.items():
        share[kind == k] = s
        source[kind == k] = OPT_IN_SOURCE[k]
    opted = has_email & (rng.random(n) < share)
    opt_in_at = np.where(opted, acq + rng.integers(1, 120, n), INF)
    pref_out = opted & (rng.random(n) < 0.05)
    pref_out_at = np.where(
        pref_out, opt_in_at + (rng.random(n) * (tl.cutoff + 180 * DAY - opt_in_at)).astype(np.int64), INF
    )
    reopt = pref_out & (rng.random(n) < 0.25)
    reopt_at = np.where(reopt, pref_out_at + rng.integers(10 * DAY, 200 * DAY, n), INF)
    sms = opted & (kind == Kind.REGISTERED) & (rng.random(n) < 0.12)

    # ---- campaign loop: state carries over from week to week
    erasure = p.erasure_at[ch.lo : ch.hi]
    dead_at = p.address_dead_at[ch.lo : ch.hi]
    death = p.death_at[ch.lo : ch.hi]
    engagement = p.engagement[ch.lo : ch.hi]
    apple = p.apple_mail[ch.lo : ch.hi]
    scanner = p.scanner[ch.lo : ch.hi]
    stopped_at = np.full(n, INF, dtype=np.int64)  # ESP unsubscribe / complaint
    hard_at = np.full(n, INF, dtype=np.int64)
    ev_person: list[np.ndarray] = []
    ev_type: list[np.ndarray] = []
    ev_at: list[np.ndarray] = []
    ev_campaign: list[np.ndarray] = []
    ev_ua: list[np.ndarray] = []  # 0 none, 1 mail client, 2 Apple MPP, 3 scanner
    ev_bounce: list[np.ndarray] = []  # 0 none, 1 hard, 2 soft

    def emit(
        who: np.ndarray, etype: int, at: np.ndarray, c: int, ua: int | np.ndarray = 0, bounce: int = 0
    ) -> None:
        ev_person.append(who)
        ev_type.append(np.full(len(who), etype, dtype=np.int8))
        ev_at.append(at)
        ev_campaign.append(np.full(len(who), c, dtype=np.int32))
        ev_ua.append(np.broadcast_to(np.asarray(ua, dtype=np.int8), (len(who),)))
        ev_bounce.append(np.full(len(who), bounce, dtype=np.int8))

    for c, t in enumerate(camp.at):
        subscribed = (opt_in_at <= t) & ~((pref_out_at <= t) & (reopt_at > t))
        eligible = subscribed & (stopped_at > t) & (hard_at > t) & (erasure > t)
        who = np.flatnonzero(eligible & (rng.random(n) < AUDIENCE_SHARE))
        m = len(who)
        sent = t + rng.integers(0, 7200, m)
        emit(who, SENT, sent, c)
        hard = dead_at[who] <= t
        soft = ~hard & (rng.random(m) < SOFT_BOUNCE)
        bounce_at = sent + rng.integers(1, 90, m)
        emit(who[hard], BOUNCE, bounce_at[hard], c, bounce=1)
        emit(who[soft], BOUNCE, bounce_at[soft], c, bounce=2)
        hard_at[who[hard]] = bounce_at[hard]
        ok = ~hard & ~soft
        dw, delivered = who[ok], sent[ok] + rng.integers(1, 30, int(ok.sum()))
        emit(dw, DELIVERED, delivered, c)
        # Machine opens: Apple MPP prefetches every delivered email within seconds; scanners too.
        mpp = apple[dw]
        emit(dw[mpp], OPEN, delivered[mpp] + rng.integers(1, 10, int(mpp.sum())), c, ua=2)
        scan = scanner[dw]
        emit(dw[scan], OPEN, delivered[scan] + rng.integers(1, 5, int(scan.sum())), c, ua=3)
        # Human opens fade after the person has churned.
        after = np.maximum(t - death[dw], 0) / DAY
        p_open = engagement[dw] * np.exp(-after / FADE_DAYS)
        opened = rng.random(len(dw)) < p_open
        ow = dw[opened]
        open_at = delivered[opened] + np.minimum(
            rng.lognormal(np.log(3 * 3600), 1.2, len(ow)), 20 * DAY
        ).astype(np.int64)
        emit(ow, OPEN, open_at, c, ua=1)
        eng = engagement[ow]
        clicked = rng.random(len(ow)) < CLICK_BASE + CLICK_PER_ENGAGEMENT * eng
        emit(ow[clicked], CLICK, open_at[clicked] + rng.integers(3, 600, int(clicked.sum())), c, ua=1)
        unsub = rng.random(len(ow)) < 0.003 + 0.02 * (1 - eng)
        unsub_at = open_at[unsub] + rng.integers(10, 900, int(unsub.sum()))
        emit(ow[unsub], UNSUBSCRIBE, unsub_at, c, ua=1)
        stopped_at[ow[unsub]] = np.minimum(stopped_at[ow[unsub]], unsub_at)
        complained = rng.random(len(dw)) < SPAM_RATE
        complained[np.flatnonzero(opened)[unsub]] = False
        spam_at = delivered[complained] + rng.integers(3600, 2 * DAY, int(complained.sum()))
        emit(dw[complained], SPAM, spam_at, c)
        stopped_at[dw[complained]] = np.minimum(stopped_at[dw[complained]], spam_at)

    person = np.concatenate(ev_person) if ev_person else np.empty(0, dtype=np.int64)
    etype = np.concatenate(ev_type) if ev_type else np.empty(0, dtype=np.int8)
    at = np.concatenate(ev_at) if ev_at else np.empty(0, dtype=np.int64)
    campaign = np.concatenate(ev_campaign) if ev_campaign else np.empty(0, dtype=np.int32)
    ua = np.concatenate(ev_ua) if ev_ua else np.empty(0, dtype=np.int8)
    bounce = np.concatenate(ev_bounce) if ev_bounce else np.empty(0, dtype=np.int8)
    visible = at < tl.cutoff
    person, etype, at, campaign, ua, bounce = (x[visible] for x in (person, etype, at, campaign, ua, bounce))

    esp = _esp_table(ch, camp, person, etype, at, campaign, ua, bounce)
    hard_bounced = np.zeros(n, dtype=bool)
    hard_bounced[person[(etype == BOUNCE) & (bounce == 1)]] = True

    # ---- consent_events
    is_unsub = etype == UNSUBSCRIBE
    is_spam = etype == SPAM
    parts = [
        (np.flatnonzero(opted), 0, 0, source[opted], opt_in_at[opted]),
        (np.flatnonzero(sms), 1, 0, source[sms], opt_in_at[sms] + 1),
        (
            np.flatnonzero(pref_out),
            0,
            1,
            np.full(int(pref_out.sum()), PREFERENCE_CENTER),
            pref_out_at[pref_out],
        ),
        (np.flatnonzero(reopt), 0, 0, np.full(int(reopt.sum()), PREFERENCE_CENTER), reopt_at[reopt]),
        (person[is_unsub], 0, 1, np.full(int(is_unsub.sum()), ESP_UNSUBSCRIBE), at[is_unsub]),
        (person[is_spam], 0, 1, np.full(int(is_spam.sum()), ESP_SPAM), at[is_spam]),
    ]
    c_person = np.concatenate([x[0] for x in parts]).astype(np.int64)
    c_channel = np.concatenate([np.full(len(x[0]), x[1], dtype=np.int8) for x in parts])
    c_status = np.concatenate([np.full(len(x[0]), x[2], dtype=np.int8) for x in parts])
    c_source = np.concatenate([x[3] for x in parts]).astype(np.int64)
    c_at = np.concatenate([x[4] for x in parts]).astype(np.int64)
    # Preference-centre changes after an ESP opt-out are superseded by it (the ESP stops for good).
    pref = c_source == PREFERENCE_CENTER
    keep = (c_at < tl.cutoff) & ~(pref & (c_at > stopped_at[c_person]))
    c_person, c_channel, c_status, c_source, c_at = (
        x[keep] for x in (c_person, c_channel, c_status, c_source, c_at)
    )
    order = np.lexsort((c_at, c_person))
    c_person, c_channel, c_status, c_source, c_at = (
        x[order] for x in (c_person, c_channel, c_status, c_source, c_at)
    )
    consent = pa.table(
        {
            "email": ch.emails.take(pa.array(c_person)),
            "customer_id": pc.if_else(
                pa.array(crm_record[c_person]),
                ids.crm_ids(ch.lo + c_person, ch.seed),
                pa.scalar(None, pa.string()),
            ),
            "channel": fmt.dictionary(c_channel, fmt.vocabulary(["email", "sms"])),
            "status": fmt.dictionary(c_status, fmt.vocabulary(["opted_in", "opted_out"])),
            "source": fmt.dictionary(c_source, fmt.vocabulary(CONSENT_SOURCES)),
            "event_at": fmt.timestamps(c_at, ch.style(TS_MIX, len(c_at))),
        }
    )
    ch.seen.email[c_person] = True
    email_rows = c_channel == 0
    last_status = np.full(n, -1, dtype=np.int8)
    last_status[c_person[email_rows]] = c_status[email_rows]  # rows are time-sorted: the last write wins
    opted_out = last_status == 1

    return EspOutput(
        esp=esp,
        consent=consent,
        privacy=_privacy(ch),
        opted_out=opted_out,
        hard_bounced=hard_bounced,
        events=EspEvents(person=person + ch.lo, event_type=etype, at=at, campaign=campaign, user_agent=ua),
    )


def _esp_table(
    ch: Chunk,
    camp: Campaigns,
    person: np.ndarray,
    etype: np.ndarray,
    at: np.ndarray,
    campaign: np.ndarray,
    ua: np.ndarray,
    bounce: np.ndarray,
) -> pa.Table:
    rng, tl, rates, log, src = ch.rng, ch.tl, ch.config.defects, ch.log, "esp_events"
    n = len(person)
    stateful = (etype == BOUNCE) | (etype == UNSUBSCRIBE) | (etype == SPAM)
    taken = stateful.copy()
    future = d.pick(rng, rates.future_dated_event, n, eligible=~taken)
    taken[future] = True
    at = at.copy()
    at[future] = tl.cutoff + rng.integers(3600, 365 * DAY, len(future))
    bad_ts = d.pick(rng, rates.unparseable_timestamp, n, eligible=~taken)
    bad_email = d.pick(rng, rates.invalid_email, n, eligible=~stateful)

    slug = [c[0].lower().replace(" & ", "-").replace(" ", "-") for c in vocab.CATEGORIES]
    landing = fmt.vocabulary([f"{vocab.SITE}/c/{s}?utm_source=esp&utm_medium=email" for s in slug])
    ua_vocab = fmt.vocabulary(
        vocab.MAIL_CLIENT_USER_AGENTS + (vocab.APPLE_MPP_USER_AGENT, vocab.SCANNER_USER_AGENT)
    )
    client = ch.persons.mail_ua[ch.lo + person].astype(np.int64)
    ua_idx = np.where(
        ua == 1,
        client,
        np.where(ua == 2, len(vocab.MAIL_CLIENT_USER_AGENTS), len(vocab.MAIL_CLIENT_USER_AGENTS) + 1),
    )
    event_ids = ids.event_ids(ch.index, np.arange(n), ESP_NAMESPACE, ch.seed, "es_")
    has_email = ch.emails.is_valid().to_numpy(zero_copy_only=False)
    email_rank = np.cumsum(has_email) - 1
    cols: d.Columns = {
        "event_id": event_ids,
        # Dictionary of the chunk's emails only (unique values), indexed by each person's rank among them.
        "email": fmt.dictionary(email_rank[person], ch.emails.filter(has_email)),
        "campaign_id": fmt.dictionary(campaign, camp.ids),
        "event_type": fmt.dictionary(etype, fmt.vocabulary(EVENT_TYPES)),
        "bounce_type": fmt.dictionary(
            np.maximum(bounce - 1, 0), fmt.vocabulary(["hard", "soft"]), bounce > 0
        ),
        "url": fmt.dictionary(camp.theme[campaign], landing, etype == CLICK),
        "user_agent": fmt.dictionary(ua_idx, ua_vocab, ua > 0),
        "event_at": fmt.timestamps(at, ch.style(TS_MIX, n)),
    }
    cols["event_at"] = d.replace_at(
        cols["event_at"], bad_ts, d.pool_values(vocab.UNPARSEABLE_TIMESTAMPS, rng, len(bad_ts))
    )
    cols["email"] = d.replace_at(
        cols["email"], bad_email, d.invalid_emails(d.as_strings(cols["email"].take(pa.array(bad_email))), rng)
    )
    ok = np.ones(n, dtype=bool)
    ok[bad_email] = False
    ch.seen.email[person[ok]] = True
    log.add(src, event_ids.take(pa.array(future)), d.FUTURE_DATED_EVENT, "event_at")
    log.add(src, event_ids.take(pa.array(bad_ts)), d.UNPARSEABLE_TIMESTAMP, "event_at")
    log.add(src, event_ids.take(pa.array(bad_email)), d.INVALID_EMAIL, "email")
    dup = d.pick(rng, rates.duplicate_event_delivery, n)
    log.add(src, event_ids.take(pa.array(dup)), d.DUPLICATE_EVENT_DELIVERY, "event_id")
    copies = d.take_rows(cols, dup)
    out: d.Columns = {}
    for name, col in cols.items():
        if pa.types.is_dictionary(col.type):
            out[name] = pa.chunked_array([col, copies[name]]).unify_dictionaries().combine_chunks()
        else:
            out[name] = pa.concat_arrays([col, copies[name]])
    return pa.table(out)


def _privacy(ch: Chunk) -> pa.Table:
    p, tl = ch.persons, ch.tl
    erasure = p.erasure_at[ch.lo : ch.hi]
    access = p.access_at[ch.lo : ch.hi]
    pe = np.flatnonzero(erasure < tl.cutoff)
    pa_ = np.flatnonzero(access < tl.cutoff)
    person = np.concatenate([pe, pa_])
    rtype = np.concatenate([np.zeros(len(pe), dtype=np.int8), np.ones(len(pa_), dtype=np.int8)])
    at = np.concatenate([erasure[pe], access[pa_]])
    order = np.lexsort((at, person))
    person, rtype, at = person[order], rtype[order], at[order]
    serial = (ch.lo + person).astype(np.uint64) * np.uint64(2) + rtype.astype(np.uint64)
    ch.seen.email[person] = True
    return pa.table(
        {
            "request_id": fmt.hex_ids(fmt.mix64(serial, ch.seed + 3), "REQ-"),
            "email": ch.emails.take(pa.array(person)),
            "request_type": fmt.dictionary(rtype, fmt.vocabulary(["erasure", "access"])),
            "requested_at": fmt.timestamps(at, ch.style(TS_MIX, len(at))),
        }
    )
