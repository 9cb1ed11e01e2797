"""Shop orders and order lines: Pareto/NBD timing with seasonality, Gamma-Gamma value, basket structure,
status versions, and the future-order truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datagen import defects as d
from datagen import fmt, ids, vocab
from datagen.context import Chunk
from datagen.persons import INF, SPEND_P, Kind, person_ids

DAY = 86_400
STATUSES = ("placed", "paid", "shipped", "cancelled", "refunded")
OUTCOME_NORMAL, OUTCOME_CANCELLED, OUTCOME_REFUNDED = 0, 1, 2
CANCEL_SHARE, REFUND_SHARE = 0.03, 0.04
# Probability that a non-final version is captured by the export (the latest version always is).
VERSION_CAPTURE = np.array([0.55, 0.6, 0.85, 1.0])
MONTH_FACTOR = np.array([0.8, 0.8, 0.9, 0.95, 1.0, 0.95, 0.9, 0.95, 1.0, 1.05, 1.45, 1.75])
TS_MIX = np.array([0.35, 0.2, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.03, 0.02])
FX = np.array([rate for _, rate in vocab.CURRENCIES])
COUNTRY_CURRENCY = np.array([[c for c, _ in vocab.CURRENCIES].index(row[2]) for row in vocab.COUNTRIES])
COUNTRY_TAX = np.array([row[3] for row in vocab.COUNTRIES])
COMPLEMENTS = np.array([(c + (c[0],))[:2] for c in vocab.COMPLEMENTS])


def season_table(first_day: int, last_day: int) -> np.ndarray:
    """Relative purchase intensity per epoch day: Nov/Dec peak, Black Friday week, post-Christmas lull."""
    days = np.arange(first_day, last_day + 1).astype("datetime64[D]")
    month_start = days.astype("datetime64[M]")
    month = month_start.astype(np.int64) % 12
    dom = (days - month_start.astype("datetime64[D]")).astype(np.int64) + 1
    f = MONTH_FACTOR[month].copy()
    f[(month == 10) & (dom >= 22)] *= 1.5
    f[(month == 11) & (dom >= 22)] *= 0.6
    return f / f.mean()


@dataclass(frozen=True)
class OrderSim:
    """All simulated orders of a chunk (past and future), sorted by (person, time)."""

    person: np.ndarray
    at: np.ndarray
    serial: np.ndarray  # numeric order id
    currency: np.ndarray
    subtotal: np.ndarray  # local-currency cents
    discount: np.ndarray
    shipping: np.ndarray
    tax: np.ndarray
    total: np.ndarray
    outcome: np.ndarray
    line_start: np.ndarray  # per order, first index into the line arrays
    n_lines: np.ndarray
    line_product: np.ndarray
    line_qty: np.ndarray
    line_price: np.ndarray  # local-currency cents

    @property
    def n(self) -> int:
        return len(self.person)

    def value_usd(self) -> np.ndarray:
        return self.total / FX[self.currency] / 100.0


def simulate(ch: Chunk, serial_base: int) -> OrderSim:
    p, tl, rng, cat = ch.persons, ch.tl, ch.rng, ch.catalogue
    b = ch.idx[p.is_buyer[ch.lo : ch.hi]]
    acq = p.acquired_at[b]
    end = np.minimum(p.death_at[b], tl.end)
    window = np.maximum(end - acq, 0)
    first_day = (tl.start - 40 * DAY) // DAY
    season = season_table(first_day, tl.end // DAY + 1)
    smax = float(season.max())
    k = rng.poisson(p.lam[b] * smax * window / DAY)
    cand_person = np.repeat(b, k)
    cand_at = np.repeat(acq, k) + (rng.random(int(k.sum())) * np.repeat(window, k)).astype(np.int64)
    # Seasonality by thinning a homogeneous process at the peak rate.
    keep = rng.random(len(cand_at)) * smax < season[cand_at // DAY - first_day]
    person = np.concatenate([b, cand_person[keep]])
    at = np.concatenate([acq, cand_at[keep]])
    order = np.lexsort((at, person))
    person, at = person[order], at[order]
    n = len(person)

    value = rng.gamma(SPEND_P, 1.0 / p.nu[person])  # USD before discount, shipping and tax
    n_lines = 1 + np.minimum(rng.poisson(0.35 + value / 150.0), 3)
    line_start = (np.cumsum(n_lines) - n_lines).astype(np.int64)
    line_order = np.repeat(np.arange(n), n_lines)
    pos = np.arange(len(line_order)) - line_start[line_order]
    lp = person[line_order]

    # Basket structure: the first line follows the person's preferences; later lines are often
    # complements of, or from the same category as, the first one.
    theta = np.cumsum(p.cat_weights[lp], axis=1)
    pref_draw = np.minimum(
        (theta < rng.random(len(lp))[:, None] * theta[:, -1:]).sum(axis=1), theta.shape[1] - 1
    )
    first_cat = pref_draw[line_start[line_order]]
    comp = COMPLEMENTS[first_cat, rng.integers(0, 2, len(lp))]
    r = rng.random(len(lp))
    line_cat = np.where(
        pos == 0, pref_draw, np.where(r < 0.45, comp, np.where(r < 0.65, first_cat, pref_draw))
    )

    # Three popularity draws; keep the one whose price is closest to the person's target line price.
    target = np.log(value[line_order] * 100.0 / n_lines[line_order])
    lt = at[line_order]
    best = cat.sample(line_cat, rng)
    best_gap = np.abs(np.log(cat.price_at(best, lt)) - target)
    for _ in range(2):
        cand = cat.sample(line_cat, rng)
        gap = np.abs(np.log(cat.price_at(cand, lt)) - target)
        better = gap < best_gap
        best, best_gap = np.where(better, cand, best), np.where(better, gap, best_gap)
    qty = 1 + (rng.random(len(lp)) < 0.12) + (rng.random(len(lp)) < 0.03)

    # The same product twice in one basket becomes one line with a higher quantity.
    key = line_order * np.int64(cat.n + 1) + best
    srt = np.argsort(key, kind="stable")
    dup_sorted = np.zeros(len(srt), dtype=bool)
    dup_sorted[1:] = key[srt][1:] == key[srt][:-1]
    first_of_run = srt[np.maximum.accumulate(np.where(~dup_sorted, np.arange(len(srt)), 0))]
    add = np.bincount(first_of_run[dup_sorted], weights=qty[srt][dup_sorted], minlength=len(qty))
    qty = qty + add.astype(np.int64)
    keep_line = np.ones(len(lp), dtype=bool)
    keep_line[srt[dup_sorted]] = False
    line_order, best, qty, lt = line_order[keep_line], best[keep_line], qty[keep_line], lt[keep_line]
    n_lines = np.bincount(line_order, minlength=n).astype(np.int64)
    line_start = (np.cumsum(n_lines) - n_lines).astype(np.int64)

    country = p.country[person]
    currency = COUNTRY_CURRENCY[country]
    unit = np.round(cat.price_at(best, lt) * FX[currency[line_order]]).astype(np.int64)
    subtotal = np.bincount(line_order, weights=unit * qty, minlength=n).astype(np.int64)
    month = (at // DAY).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12
    promo = rng.random(n) < np.where(month >= 10, 0.4, 0.2)
    pct = np.array([0.10, 0.15, 0.20])[rng.integers(0, 3, n)]
    discount = np.where(promo, np.round(subtotal * pct), 0).astype(np.int64)
    net = subtotal - discount
    shipping = np.where(net >= 5000, 0, 599).astype(np.int64)
    tax = np.round(net * COUNTRY_TAX[country]).astype(np.int64)
    total = net + shipping + tax

    u = rng.random(n)
    outcome = np.where(
        u < CANCEL_SHARE,
        OUTCOME_CANCELLED,
        np.where(u < CANCEL_SHARE + REFUND_SHARE, OUTCOME_REFUNDED, OUTCOME_NORMAL),
    )
    return OrderSim(
        person=person,
        at=at,
        serial=serial_base + np.arange(n, dtype=np.int64),
        currency=currency,
        subtotal=subtotal,
        discount=discount,
        shipping=shipping,
        tax=tax,
        total=total,
        outcome=outcome,
        line_start=line_start,
        n_lines=n_lines,
        line_product=best,
        line_qty=qty,
        line_price=unit,
    )


def _versions(sim: OrderSim, ch: Chunk) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Delivered order versions: (order index, status code, updated_at), order-major."""
    rng, n = ch.rng, sim.n
    t = np.full((n, 4), INF, dtype=np.int64)
    cancelled = sim.outcome == OUTCOME_CANCELLED
    t[:, 0] = sim.at
    paid = sim.at + rng.integers(30, 1200, n)
    t[:, 1] = np.where(cancelled & (rng.random(n) < 0.5), INF, paid)
    shipped = paid + rng.integers(int(0.4 * DAY), 3 * DAY, n)
    t[:, 2] = np.where(cancelled, INF, shipped)
    cancel_at = np.where(t[:, 1] < INF, t[:, 1], t[:, 0]) + rng.integers(3600, 36 * 3600, n)
    refund_at = shipped + rng.integers(5 * DAY, 30 * DAY, n)
    t[:, 3] = np.where(cancelled, cancel_at, np.where(sim.outcome == OUTCOME_REFUNDED, refund_at, INF))
    visible = t < ch.tl.cutoff
    latest = 3 - np.argmax(visible[:, ::-1], axis=1)
    keep = visible & ((rng.random((n, 4)) < VERSION_CAPTURE) | (np.arange(4) == latest[:, None]))
    order_idx, slot = np.nonzero(keep)
    status = np.where(slot < 3, slot, np.where(sim.outcome[order_idx] == OUTCOME_CANCELLED, 3, 4))
    return order_idx, status, t[order_idx, slot]


def _non_numeric(values: pa.Array, rng: np.random.Generator) -> pa.Array:
    """Pool values, a currency symbol prefix or a comma decimal separator."""
    k = len(values)
    kind = rng.integers(0, 3, k)
    return pc.case_when(
        pc.make_struct(pa.array(kind == 0), pa.array(kind == 1)),
        d.pool_values(vocab.NON_NUMERIC_AMOUNTS, rng, k),
        pc.binary_join_element_wise("$", values, ""),
        # A decimal comma, or a unit suffix where there is no decimal point (quantities).
        pc.if_else(
            pc.match_substring(values, "."),
            pc.replace_substring(values, ".", ","),
            pc.binary_join_element_wise(values, " pcs", ""),
        ),
    )


@dataclass(frozen=True)
class OrdersOutput:
    orders: pa.Table
    lines: pa.Table
    next_serial: int
    past_orders_per_person: np.ndarray  # per chunk person
    future_count: np.ndarray  # per chunk person (excluding cancelled / refunded)
    future_value: np.ndarray
    future_details: pa.Table | None


def build(ch: Chunk, sim: OrderSim, serial: int) -> OrdersOutput:
    """Raw order and line tables of the chunk; ``serial`` is the first free order number."""
    rng, rates, log, tl = ch.rng, ch.config.defects, ch.log, ch.tl
    past = sim.at < tl.cutoff
    local = sim.person - ch.lo

    # ---- shop_orders: one row per delivered version
    oi, status, updated = _versions(sim, ch)
    rp = sim.person[oi]
    registered = ch.persons.kind[rp] == Kind.REGISTERED
    n_rows = len(oi)
    created_style = ch.style(TS_MIX, n_rows)
    cols: d.Columns = {
        "order_id": ids.order_ids(sim.serial[oi]),
        "customer_id": pc.if_else(
            pa.array(registered), ids.shop_ids(rp, ch.seed), pa.scalar(None, pa.string())
        ),
        "email": ch.emails.take(pa.array(local[oi])),
        "status": fmt.dictionary(status, fmt.vocabulary(STATUSES)),
        "currency": fmt.dictionary(sim.currency[oi], fmt.vocabulary([c for c, _ in vocab.CURRENCIES])),
        "subtotal": fmt.money(sim.subtotal[oi]),
        "discount": fmt.money(sim.discount[oi]),
        "shipping": fmt.money(sim.shipping[oi]),
        "tax": fmt.money(sim.tax[oi]),
        "total": fmt.money(sim.total[oi]),
        "created_at": fmt.timestamps(sim.at[oi], created_style),
        "updated_at": fmt.timestamps(
            updated, np.where(rng.random(n_rows) < 0.8, created_style, ch.style(TS_MIX, n_rows))
        ),
    }
    ch.seen.shop_id[local[oi][registered]] = True
    src = "shop_orders"

    bad_email = d.pick(rng, rates.invalid_email, n_rows)
    cols["email"] = d.replace_at(
        cols["email"], bad_email, d.invalid_emails(cols["email"].take(pa.array(bad_email)), rng)
    )
    log.add_rows(src, cols, bad_email, d.INVALID_EMAIL, "email")
    email_ok = np.ones(n_rows, dtype=bool)
    email_ok[bad_email] = False
    ch.seen.email[local[oi][email_ok]] = True

    bad_ts = d.pick(rng, rates.unparseable_timestamp, n_rows)
    cols["created_at"] = d.replace_at(
        cols["created_at"], bad_ts, d.pool_values(vocab.UNPARSEABLE_TIMESTAMPS, rng, len(bad_ts))
    )
    log.add_rows(src, cols, bad_ts, d.UNPARSEABLE_TIMESTAMP, "created_at")

    taken = np.zeros(n_rows, dtype=bool)
    neg = d.pick(rng, rates.negative_amount, n_rows)
    taken[neg] = True
    nonnum = d.pick(rng, rates.non_numeric_amount, n_rows, eligible=~taken)
    _amount_defects(
        ch, cols, src, neg, ("subtotal", "total"), nonnum, ("subtotal", "shipping", "tax", "total")
    )

    bad_cur = d.pick(rng, rates.unknown_currency, n_rows)
    cols["currency"] = d.replace_at(
        cols["currency"], bad_cur, d.pool_values(vocab.UNKNOWN_CURRENCIES, rng, len(bad_cur))
    )
    log.add_rows(src, cols, bad_cur, d.UNKNOWN_CURRENCY, "currency")

    # ---- shop_order_lines of past orders
    po = np.flatnonzero(past)
    lo_idx = _expand(sim.line_start[po], sim.n_lines[po])
    line_order = np.repeat(po, sim.n_lines[po])
    line_no = lo_idx - sim.line_start[line_order] + 1
    product = sim.line_product[lo_idx].copy()
    n_lines_rows = len(lo_idx)
    unknown = d.pick(rng, rates.unknown_product, n_lines_rows)
    product[unknown] = ch.catalogue.n + rng.integers(0, len(ch.catalogue.ids) - ch.catalogue.n, len(unknown))
    oid = ids.order_ids(sim.serial[line_order])
    lcols: d.Columns = {
        "order_line_id": pc.binary_join_element_wise(oid, "-", fmt.integers(line_no), ""),
        "order_id": oid,
        "product_id": fmt.dictionary(product, ch.catalogue.ids),
        "quantity": fmt.integers(sim.line_qty[lo_idx]),
        "unit_price": fmt.money(sim.line_price[lo_idx]),
    }
    lsrc = "shop_order_lines"
    log.add_rows(lsrc, lcols, unknown, d.UNKNOWN_PRODUCT, "product_id")
    taken = np.zeros(n_lines_rows, dtype=bool)
    lneg = d.pick(rng, rates.negative_amount, n_lines_rows)
    taken[lneg] = True
    lnon = d.pick(rng, rates.non_numeric_amount, n_lines_rows, eligible=~taken)
    _amount_defects(ch, lcols, lsrc, lneg, ("unit_price",), lnon, ("unit_price", "quantity"))

    # ---- test orders, orphan lines, verbatim re-deliveries
    cols, lcols, serial = _test_orders(ch, cols, lcols, n_rows, serial)
    lcols = _orphan_lines(ch, lcols, n_lines_rows)
    dup = d.pick(rng, rates.duplicate_order_version, n_rows)
    log.add_rows(src, cols, dup, d.DUPLICATE_ORDER_VERSION)
    cols = d.append_rows(cols, d.take_rows(cols, dup))

    # ---- truth
    past_count = np.bincount(local[past], minlength=ch.size)
    fut = (~past) & (sim.outcome == OUTCOME_NORMAL)
    value = np.round(sim.value_usd(), 2)  # rounded once, so totals equal the sum of the details
    future_count = np.bincount(local[fut], minlength=ch.size)
    future_value = np.round(np.bincount(local[fut], weights=value[fut], minlength=ch.size), 2)
    details = None
    if ch.config.horizon_days:
        fo = np.flatnonzero(~past)
        fl = _expand(sim.line_start[fo], sim.n_lines[fo])
        lines_of = np.repeat(np.arange(len(fo)), sim.n_lines[fo])
        prod = ch.catalogue.ids.take(pa.array(sim.line_product[fl]))
        joined = _join_groups(prod, lines_of, len(fo))
        details = pa.table(
            {
                "true_person_id": person_ids(sim.person[fo]),
                "order_id": ids.order_ids(sim.serial[fo]),
                "order_at": pa.array(sim.at[fo].astype("datetime64[s]")).cast(pa.timestamp("s", tz="UTC")),
                "status": fmt.vocabulary(("completed", "cancelled", "refunded")).take(
                    pa.array(sim.outcome[fo])
                ),
                "value": pa.array(value[fo]),
                "product_ids": joined,
            }
        )
    return OrdersOutput(
        orders=pa.table(cols),
        lines=pa.table(lcols),
        next_serial=serial,
        past_orders_per_person=past_count,
        future_count=future_count,
        future_value=future_value,
        future_details=details,
    )


def _expand(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenated ranges [start, start + count) without a Python loop."""
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    offsets = np.cumsum(counts) - counts
    return np.repeat(starts - offsets, counts) + np.arange(total)


def _join_groups(values: pa.Array, group: np.ndarray, n_groups: int) -> pa.Array:
    """'|'-join of ``values`` per consecutive group id (groups are sorted)."""
    if n_groups == 0:
        return pa.array([], type=pa.string())
    offsets = np.concatenate([[0], np.cumsum(np.bincount(group, minlength=n_groups))]).astype(np.int32)
    lists = pa.ListArray.from_arrays(pa.array(offsets), values)
    return pc.binary_join(lists, "|")


def _amount_defects(
    ch: Chunk,
    cols: d.Columns,
    src: str,
    neg: np.ndarray,
    neg_cols: tuple[str, ...],
    nonnum: np.ndarray,
    non_cols: tuple[str, ...],
) -> None:
    rng = ch.rng
    for idx, choices, code in ((neg, neg_cols, d.NEGATIVE_AMOUNT), (nonnum, non_cols, d.NON_NUMERIC_AMOUNT)):
        which = rng.integers(0, len(choices), len(idx))
        for k, col in enumerate(choices):
            rows = idx[which == k]
            if not len(rows):
                continue
            current = cols[col].take(pa.array(rows))
            if code == d.NEGATIVE_AMOUNT:
                # Zero amounts would stay non-negative, so force a visible magnitude.
                new = pc.binary_join_element_wise(
                    "-", pc.if_else(pc.equal(current, "0.00"), "1.00", current), ""
                )
            else:
                new = _non_numeric(current, rng)
            cols[col] = d.replace_at(cols[col], rows, new)
            ch.log.add_rows(src, cols, rows, code, col)


def _test_orders(
    ch: Chunk, cols: d.Columns, lcols: d.Columns, n_real_rows: int, serial: int
) -> tuple[d.Columns, d.Columns, int]:
    rng, tl = ch.rng, ch.tl
    k = d.exact_count(ch.config.defects.test_order, n_real_rows, rng)
    if k == 0:
        return cols, lcols, serial
    serials = serial + np.arange(k, dtype=np.int64)
    at = tl.start + (rng.random(k) * (tl.cutoff - tl.start - DAY)).astype(np.int64)
    n_lines = rng.integers(1, 3, k)
    product = ch.catalogue.sample(rng.integers(0, len(vocab.CATEGORIES), int(n_lines.sum())), rng)
    price = ch.catalogue.price_at(product, np.repeat(at, n_lines))
    subtotal = np.bincount(np.repeat(np.arange(k), n_lines), weights=price, minlength=k).astype(np.int64)
    oid = ids.order_ids(serials)
    qa = pc.binary_join_element_wise("qa+", fmt.integers(serials), "@" + vocab.TEST_EMAIL_DOMAIN, "")
    zero = fmt.money(np.zeros(k, dtype=np.int64))
    test = {
        "order_id": oid,
        "customer_id": pa.nulls(k, pa.string()),
        "email": qa,
        "status": fmt.vocabulary(STATUSES).take(pa.array(rng.integers(0, 3, k))),
        "currency": pa.repeat(pa.scalar("USD"), k),
        "subtotal": fmt.money(subtotal),
        "discount": zero,
        "shipping": zero,
        "tax": zero,
        "total": fmt.money(subtotal),
        "created_at": fmt.timestamps(at),
        "updated_at": fmt.timestamps(at),
    }
    cols = d.append_rows(cols, test)
    ch.log.add_rows("shop_orders", cols, np.arange(n_real_rows, n_real_rows + k), d.TEST_ORDER)
    line_oid = oid.take(pa.array(np.repeat(np.arange(k), n_lines)))
    line_no = _expand(np.ones(k, dtype=np.int64), n_lines)
    test_lines = {
        "order_line_id": pc.binary_join_element_wise(line_oid, "-", fmt.integers(line_no), ""),
        "order_id": line_oid,
        "product_id": ch.catalogue.ids.take(pa.array(product)),
        "quantity": pa.repeat(pa.scalar("1"), len(product)),
        "unit_price": fmt.money(price),
    }
    n_before = len(lcols["order_id"])
    lcols = d.append_rows(lcols, test_lines)
    ch.log.add_rows("shop_order_lines", lcols, np.arange(n_before, n_before + len(product)), d.TEST_ORDER)
    return cols, lcols, serial + k


def _orphan_lines(ch: Chunk, lcols: d.Columns, n_real_lines: int) -> d.Columns:
    rng = ch.rng
    k = d.exact_count(ch.config.defects.orphan_line, n_real_lines, rng)
    if k == 0:
        return lcols
    # Orphans use a reserved order-id range that real orders never reach; unique per chunk.
    serials = ids.ORPHAN_ORDER_BASE + ch.index * 10_000_000 + np.arange(k, dtype=np.int64)
    oid = ids.order_ids(serials)
    product = ch.catalogue.sample(rng.integers(0, len(vocab.CATEGORIES), k), rng)
    orphans = {
        "order_line_id": pc.binary_join_element_wise(oid, "-1", ""),
        "order_id": oid,
        "product_id": ch.catalogue.ids.take(pa.array(product)),
        "quantity": fmt.integers(1 + (rng.random(k) < 0.1)),
        "unit_price": fmt.money(ch.catalogue.price_at(product, np.full(k, ch.tl.cutoff - DAY))),
    }
    n_before = len(lcols["order_id"])
    lcols = d.append_rows(lcols, orphans)
    ch.log.add_rows("shop_order_lines", lcols, np.arange(n_before, n_before + k), d.ORPHAN_LINE)
    return lcols
