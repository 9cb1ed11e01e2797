"""Web events: sessions that precede purchases, research and browse sessions, abandoned carts, device logins,
anonymous visitors and bots.

A session is a run of stages (landing page, login/signup, search, extra views, views of the ordered items,
add-to-carts, checkout); event types and products follow from each event's stage, so all sessions of a
chunk are expanded into events at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from datagen import defects as d
from datagen import fmt, ids, vocab
from datagen.context import Chunk
from datagen.orders import OrderSim
from datagen.persons import MAX_DEVICES, Kind

DAY = 86_400
EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "checkout_started", "search", "login", "signup")
PAGE_VIEW, PRODUCT_VIEW, ADD_TO_CART, CHECKOUT, SEARCH, LOGIN, SIGNUP = range(7)
CONVERT, RESEARCH, BROWSE, DEVICE_LOGIN, ANON, BOT = range(6)
# Logged-in state of a session: never, from the login event on, or all along (remembered device).
LOGGED_OUT, FROM_LOGIN, LOGGED_IN = 0, 1, 2
TS_MIX = np.array([0.7, 0, 0.05, 0.08, 0, 0.07, 0.05, 0, 0.03, 0.02])
BROWSE_PER_PURCHASE, BROWSE_BASE_PER_DAY = 0.4, 0.003
BROWSE_TAIL_DAYS = 30  # browse sessions go on this long after the customer churns
WEB_NAMESPACE = 1
CATEGORY_POOL = 8


@dataclass
class Sessions:
    person: np.ndarray
    device: np.ndarray
    kind: np.ndarray
    anchor: np.ndarray  # start time; for CONVERT and DEVICE_LOGIN the time of the last event
    stages: np.ndarray  # (n, 7) event counts per stage
    login_type: np.ndarray  # LOGIN or SIGNUP
    logged: np.ndarray
    order: np.ndarray  # index into OrderSim (-1 if none)


def _device_at(ch: Chunk, person: np.ndarray, t: np.ndarray) -> np.ndarray:
    """A device the person had started using by ``t`` (device 0 if none yet)."""
    started = (ch.persons.device_start[person] <= t[:, None]).sum(axis=1)
    return np.minimum((ch.rng.random(len(person)) * np.maximum(started, 1)).astype(np.int64), MAX_DEVICES - 1)


def _sessions(ch: Chunk, sim: OrderSim) -> Sessions:
    p, rng, tl = ch.persons, ch.rng, ch.tl
    parts: list[dict[str, np.ndarray]] = []

    def add(
        person: np.ndarray,
        device: np.ndarray | int,
        kind: int,
        anchor: np.ndarray,
        stages: np.ndarray,
        login_type: np.ndarray | int,
        logged: np.ndarray | int,
        order: np.ndarray | int,
    ) -> None:
        n = len(person)
        parts.append(
            {
                "person": person,
                "device": np.broadcast_to(np.asarray(device, dtype=np.int64), (n,)),
                "kind": np.full(n, kind, np.int8),
                "anchor": anchor,
                "stages": stages,
                "login_type": np.broadcast_to(login_type, (n,)).astype(np.int8),
                "logged": np.broadcast_to(logged, (n,)).astype(np.int8),
                "order": np.broadcast_to(order, (n,)).astype(np.int64),
            }
        )

    # Purchase sessions of registered persons (past and future orders: future ones are cut at the cutoff).
    reg_orders = np.flatnonzero(p.kind[sim.person] == Kind.REGISTERED)
    op, ot = sim.person[reg_orders], sim.at[reg_orders]
    n = len(reg_orders)
    first = ot == p.acquired_at[op]
    has_login = first | (rng.random(n) < 0.45)
    stages = np.zeros((n, 7), dtype=np.int64)
    stages[:, 0] = 1
    stages[:, 1] = has_login
    stages[:, 2] = rng.random(n) < 0.3
    stages[:, 3] = rng.poisson(1.2, n)
    stages[:, 4] = sim.n_lines[reg_orders]
    stages[:, 5] = sim.n_lines[reg_orders]
    stages[:, 6] = 1
    device = np.where(first, 0, _device_at(ch, op, ot - 2 * 3600))
    add(
        op,
        device,
        CONVERT,
        ot - rng.integers(30, 240, n),
        stages,
        np.where(first, SIGNUP, LOGIN),
        np.where(has_login, FROM_LOGIN, LOGGED_IN),
        reg_orders,
    )

    # Research sessions days before a purchase that view the item later bought.
    res = reg_orders[rng.random(n) < 0.35]
    rp = sim.person[res]
    start = sim.at[res] - rng.integers(DAY, 7 * DAY, len(res))
    stages = np.zeros((len(res), 7), dtype=np.int64)
    cart = rng.random(len(res)) < 0.5  # carted now, bought days later: an abandoned cart that converts
    stages[:, 0] = 1
    stages[:, 2] = rng.random(len(res)) < 0.4
    stages[:, 3] = rng.poisson(2.0, len(res))
    stages[:, 4] = 1
    stages[:, 5] = cart
    stages[:, 6] = cart & (rng.random(len(res)) < 0.2)
    add(
        rp,
        _device_at(ch, rp, start),
        RESEARCH,
        start,
        stages,
        LOGIN,
        # Nobody is logged in before their account exists (research for the first order).
        np.where(
            (rng.random(len(res)) < np.where(cart, 0.7, 0.4)) & (start >= p.acquired_at[rp]),
            LOGGED_IN,
            LOGGED_OUT,
        ),
        res,
    )

    # Non-converting browse sessions while the customer is active (plus a short tail after churn).
    reg = ch.idx[p.kind[ch.lo : ch.hi] == Kind.REGISTERED]
    acq = p.acquired_at[reg]
    end = np.minimum(np.minimum(p.death_at[reg] + BROWSE_TAIL_DAYS * DAY, p.erasure_at[reg]), tl.cutoff)
    span = np.maximum(end - acq, 0)
    k = rng.poisson((BROWSE_PER_PURCHASE * p.lam[reg] + BROWSE_BASE_PER_DAY) * span / DAY)
    bp = np.repeat(reg, k)
    start = np.repeat(acq, k) + (rng.random(len(bp)) * np.repeat(span, k)).astype(np.int64)
    nb = len(bp)
    cart = rng.random(nb) < 0.4
    stages = np.zeros((nb, 7), dtype=np.int64)
    stages[:, 0] = 1
    stages[:, 2] = rng.random(nb) < 0.25
    stages[:, 3] = np.maximum(rng.poisson(2.5, nb), cart)
    stages[:, 5] = cart
    stages[:, 6] = cart & (rng.random(nb) < 0.3)
    # Shoppers who fill a cart are mostly logged in (that is what makes abandoned-cart emails possible).
    add(
        bp,
        _device_at(ch, bp, start),
        BROWSE,
        start,
        stages,
        LOGIN,
        np.where(rng.random(nb) < np.where(cart, 0.7, 0.4), LOGGED_IN, LOGGED_OUT),
        -1,
    )

    # Every further device is linked by a login at the moment it is first used.
    dev_start = p.device_start[reg]
    rr, dd = np.nonzero((dev_start < tl.cutoff) & (np.arange(MAX_DEVICES) >= 1))
    stages = np.zeros((len(rr), 7), dtype=np.int64)
    stages[:, 0] = 1
    stages[:, 1] = 1
    add(reg[rr], dd, DEVICE_LOGIN, dev_start[rr, dd], stages, LOGIN, FROM_LOGIN, -1)

    # Anonymous visitors browse for a while and never identify.
    anon = ch.idx[p.kind[ch.lo : ch.hi] == Kind.ANONYMOUS]
    k = 1 + rng.poisson(1.2, len(anon))
    ap = np.repeat(anon, k)
    na = len(ap)
    start = p.acquired_at[ap] + (rng.random(na) * 90 * DAY).astype(np.int64)
    start[np.cumsum(k) - k] = p.acquired_at[anon]
    cart = rng.random(na) < 0.05
    stages = np.zeros((na, 7), dtype=np.int64)
    stages[:, 0] = 1
    stages[:, 2] = rng.random(na) < 0.2
    stages[:, 3] = np.maximum(rng.poisson(2.0, na), cart)
    stages[:, 5] = cart
    add(ap, 0, ANON, start, stages, LOGIN, LOGGED_OUT, -1)

    # Bots: bursts of rapid page and product views.
    bots = ch.idx[p.kind[ch.lo : ch.hi] == Kind.BOT]
    k = 1 + rng.poisson(1.0, len(bots))
    bp = np.repeat(bots, k)
    start = p.acquired_at[bp] + (rng.random(len(bp)) * 30 * DAY).astype(np.int64)
    start[np.cumsum(k) - k] = p.acquired_at[bots]
    stages = np.zeros((len(bp), 7), dtype=np.int64)
    stages[:, 0] = 1
    stages[:, 3] = 20 + rng.poisson(100, len(bp))
    add(bp, 0, BOT, start, stages, LOGIN, LOGGED_OUT, -1)

    return Sessions(**{key: np.concatenate([part[key] for part in parts]) for key in parts[0]})


@dataclass(frozen=True)
class WebOutput:
    table: pa.Table
    n_sessions: int
    sessions: Sessions  # what was drawn, before events, defects and the cut at the as-of


def build(ch: Chunk, sim: OrderSim) -> WebOutput:
    p, rng, tl, cat = ch.persons, ch.rng, ch.tl, ch.catalogue
    s = _sessions(ch, sim)
    n_events = s.stages.sum(axis=1)
    first_event = np.cumsum(n_events) - n_events
    sess = np.repeat(np.arange(len(n_events)), n_events)
    n = len(sess)
    # Stage of every event, and its position within that stage, from the per-session stage counts.
    block = s.stages.ravel()
    stage = np.repeat(np.tile(np.arange(7, dtype=np.int8), len(n_events)), block)
    in_stage = np.arange(n) - np.repeat(np.cumsum(block) - block, block)
    kind = s.kind[sess]
    person = s.person[sess]
    local = person - ch.lo

    # A few category draws per person from their preferences; events pick one of them.
    theta = np.cumsum(p.cat_weights[ch.lo : ch.hi], axis=1)
    draws = rng.random((ch.size, CATEGORY_POOL, 1)) * theta[:, None, -1:]
    pool = np.minimum((theta[:, None, :] < draws).sum(axis=2), theta.shape[1] - 1).astype(np.int8)
    pref_cat = pool[local, rng.integers(0, CATEGORY_POOL, n)]

    # Products: extra views follow the person's tastes (purchase sessions lean to the bought category).
    order = s.order[sess]
    product = np.zeros(n, dtype=np.int64)
    extra = np.flatnonzero(stage == 3)
    view_cat = pref_cat[extra]
    if sim.n:
        first_line = np.where(order >= 0, sim.line_start[np.maximum(order, 0)], 0)
        lean = (order[extra] >= 0) & (rng.random(len(extra)) < 0.5)
        view_cat = np.where(lean, cat.category[sim.line_product[first_line[extra]]], view_cat)
    else:
        first_line = np.zeros(n, dtype=np.int64)
    product[extra] = cat.sample(view_cat, rng)
    bot = kind == BOT
    bot_extra = extra[bot[extra]]
    product[bot_extra] = rng.integers(0, cat.n, len(bot_extra))
    in_stage4 = np.flatnonzero(stage == 4)
    product[in_stage4] = sim.line_product[
        first_line[in_stage4] + in_stage[in_stage4] * (kind[in_stage4] == CONVERT)
    ]
    in_cart = stage == 5
    conv_cart = np.flatnonzero(in_cart & (kind == CONVERT))
    product[conv_cart] = sim.line_product[first_line[conv_cart] + in_stage[conv_cart]]
    # A browse cart holds the last item viewed in the session.
    other_cart = np.flatnonzero(in_cart & (kind != CONVERT))
    last_view = other_cart - in_stage[other_cart] - 1
    product[other_cart] = product[last_view]

    etype = np.array([PAGE_VIEW, LOGIN, SEARCH, PRODUCT_VIEW, PRODUCT_VIEW, ADD_TO_CART, CHECKOUT])[stage]
    etype[stage == 1] = s.login_type[sess[stage == 1]]
    extra_page = (stage == 3) & ((kind == BROWSE) | (kind == ANON) | bot) & (rng.random(n) < 0.3)
    extra_page[last_view] = False
    etype[extra_page] = PAGE_VIEW

    # Times: gaps of a few seconds to minutes (bots: 1-2 s); purchase sessions end just before the order.
    gaps = np.where(bot, 1 + (rng.random(n) < 0.5), 3 + rng.exponential(35.0, n).astype(np.int64))
    cum = np.cumsum(gaps)
    within = cum - cum[first_event][sess]
    backward = (s.kind == CONVERT) | (s.kind == DEVICE_LOGIN)
    last_offset = within[first_event + n_events - 1]
    start = np.where(backward, s.anchor - last_offset, s.anchor)
    event_at = start[sess] + within
    keep = event_at < tl.cutoff - 60
    received_at = event_at + np.minimum(rng.exponential(2.0, n), 25).astype(np.int64)

    logged = s.logged[sess]
    has_user = (logged == LOGGED_IN) | ((logged == FROM_LOGIN) & (stage >= 1))
    del in_stage, order, first_line

    # Drop what happens after the cutoff, then inject numeric defects.
    sel = np.flatnonzero(keep)
    sess, stage, kind, person, product, etype = (
        sess[sel],
        stage[sel],
        kind[sel],
        person[sel],
        product[sel],
        etype[sel],
    )
    event_at, received_at, has_user, pref_cat = event_at[sel], received_at[sel], has_user[sel], pref_cat[sel]
    device = s.device[sess]
    n = len(sel)
    rates = ch.config.defects
    carries_product = (etype == PRODUCT_VIEW) | (etype == ADD_TO_CART)
    stateful = (etype == LOGIN) | (etype == SIGNUP)
    unknown = d.pick(rng, rates.unknown_product, int(carries_product.sum()), eligible=carries_product)
    product[unknown] = cat.n + rng.integers(0, len(cat.ids) - cat.n, len(unknown))
    late = d.pick(rng, rates.late_arriving_event, n, eligible=event_at < tl.cutoff - 11 * DAY)
    received_at[late] = event_at[late] + rng.integers(DAY, 10 * DAY, len(late))
    taken = stateful.copy()
    taken[late] = True
    future = d.pick(rng, rates.future_dated_event, n, eligible=~taken)
    taken[future] = True
    event_at[future] = tl.cutoff + rng.integers(3600, 365 * DAY, len(future))
    bad_ts = d.pick(rng, rates.unparseable_timestamp, n, eligible=~taken)

    local = person - ch.lo
    ch.seen.device[local, device] = True
    ch.seen.shop_id[local[has_user]] = True

    # Strings.
    n_cat = len(vocab.CATEGORIES)
    queries = [(c, q) for c, row in enumerate(vocab.CATEGORIES) for q in row[5]]
    q_cat = np.array([c for c, _ in queries])
    q_start = np.searchsorted(q_cat, np.arange(n_cat))
    q_count = np.bincount(q_cat, minlength=n_cat)
    query = q_start[pref_cat] + (rng.random(n) * q_count[pref_cat]).astype(np.int64)
    slug = [c[0].lower().replace(" & ", "-").replace(" ", "-") for c in vocab.CATEGORIES]
    url_vocab = (
        [vocab.SITE + page for page in vocab.STATIC_PAGES]
        + [f"{vocab.SITE}/c/{s_}" for s_ in slug]
        + [f"{vocab.SITE}/search?q={q.replace(' ', '+')}" for _, q in queries]
        + [f"{vocab.SITE}/checkout", f"{vocab.SITE}/account/login", f"{vocab.SITE}/account/signup"]
    )
    n_static, base_cat, base_q = (
        len(vocab.STATIC_PAGES),
        len(vocab.STATIC_PAGES),
        len(vocab.STATIC_PAGES) + n_cat,
    )
    base_fixed = base_q + len(queries)
    base_prod = len(url_vocab)
    landing_static = rng.random(n) < 0.5
    url = np.where(landing_static, rng.integers(0, n_static, n), base_cat + pref_cat)
    url = np.where(etype == SEARCH, base_q + query, url)
    url = np.where(carries_product, base_prod + product, url)
    url = np.where(etype == CHECKOUT, base_fixed, url)
    url = np.where(etype == LOGIN, base_fixed + 1, url)
    url = np.where(etype == SIGNUP, base_fixed + 2, url)
    urls = pa.concat_arrays([fmt.vocabulary(url_vocab), cat.urls])

    user_agents = fmt.vocabulary(vocab.BROWSER_USER_AGENTS + vocab.BOT_USER_AGENTS)
    ua = p.device_ua[person, device].astype(np.int64) + np.where(
        kind == BOT, len(vocab.BROWSER_USER_AGENTS), 0
    )
    event_ids = ids.event_ids(ch.index, np.arange(n), WEB_NAMESPACE, ch.seed, "we_")
    style = ch.style(TS_MIX, n)
    cols: d.Columns = {
        "event_id": event_ids,
        "anonymous_id": fmt.dictionary(
            local * MAX_DEVICES + device,
            ids.anonymous_ids(np.arange(ch.lo * MAX_DEVICES, ch.hi * MAX_DEVICES), ch.seed),
        ),
        "user_id": fmt.dictionary(local, ids.shop_ids(ch.idx, ch.seed), has_user),
        "event_type": fmt.dictionary(etype, fmt.vocabulary(EVENT_TYPES)),
        "product_id": fmt.dictionary(product, cat.ids, carries_product),
        "url": fmt.dictionary(url, urls),
        "search_query": fmt.dictionary(query, fmt.vocabulary([q for _, q in queries]), etype == SEARCH),
        "user_agent": fmt.dictionary(ua, user_agents),
        "event_at": fmt.timestamps(event_at, style),
        "received_at": fmt.timestamps(received_at),
    }
    cols["event_at"] = d.replace_at(
        cols["event_at"], bad_ts, d.pool_values(vocab.UNPARSEABLE_TIMESTAMPS, rng, len(bad_ts))
    )
    src, log = "web_events", ch.log
    log.add(src, event_ids.take(pa.array(np.flatnonzero(kind == BOT))), d.BOT_TRAFFIC)
    log.add(src, event_ids.take(pa.array(unknown)), d.UNKNOWN_PRODUCT, "product_id")
    log.add(src, event_ids.take(pa.array(late)), d.LATE_ARRIVING_EVENT, "received_at")
    log.add(src, event_ids.take(pa.array(future)), d.FUTURE_DATED_EVENT, "event_at")
    log.add(src, event_ids.take(pa.array(bad_ts)), d.UNPARSEABLE_TIMESTAMP, "event_at")

    # Re-deliveries: half verbatim, half received again later (never after the cutoff).
    dup = d.pick(rng, rates.duplicate_event_delivery, n)
    log.add(src, event_ids.take(pa.array(dup)), d.DUPLICATE_EVENT_DELIVERY, "event_id")
    copies = d.take_rows(cols, dup)
    # Re-sent within hours, so a re-delivery is never mistaken for a late arrival.
    later = (rng.random(len(dup)) < 0.5) & (received_at[dup] < tl.cutoff - DAY)
    redelivered = received_at[dup] + rng.integers(60, 6 * 3600, len(dup))
    copies["received_at"] = d.replace_at(
        copies["received_at"], np.flatnonzero(later), fmt.timestamps(redelivered[later])
    )
    cols = _append_keep_dict(cols, copies)
    return WebOutput(table=pa.table(cols), n_sessions=len(n_events), sessions=s)


def _append_keep_dict(cols: d.Columns, extra: d.Columns) -> d.Columns:
    """Append rows; dictionary columns stay dictionary-encoded (unified dictionaries)."""
    out: d.Columns = {}
    for name, col in cols.items():
        other = extra[name]
        if pa.types.is_dictionary(col.type):
            out[name] = pa.chunked_array([col, other]).unify_dictionaries().combine_chunks()
        else:
            out[name] = pa.concat_arrays([col, other])
    return out
