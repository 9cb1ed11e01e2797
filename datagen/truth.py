"""Ground-truth tables (``_truth/``): identities, persons and future orders. The pipeline never reads them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datagen import fmt, ids, vocab
from datagen.context import Chunk
from datagen.esp import EspOutput
from datagen.orders import OrdersOutput
from datagen.persons import KIND_NAMES, MAX_DEVICES, SPEND_P, Kind, person_ids
from datagen.schema import TRUTH_SCHEMAS


def _ts(seconds: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    arr = pa.array(np.asarray(seconds, dtype=np.int64), mask=None if valid is None else ~valid)
    return arr.cast(pa.timestamp("s", tz="UTC"))


def identities(ch: Chunk) -> pa.Table:
    """Every identifier that appears in the raw data, once, with the person it belongs to."""
    seen = ch.seen
    parts: list[tuple[np.ndarray, str, pa.Array]] = []
    for customer_ids, local in seen.crm:
        parts.append((local, "crm_customer_id", customer_ids))
    shop = np.flatnonzero(seen.shop_id)
    parts.append((shop, "shop_customer_id", ids.shop_ids(ch.lo + shop, ch.seed)))
    has_email = ch.persons.kind[ch.lo : ch.hi] <= Kind.PROSPECT_ESP
    em = np.flatnonzero(seen.email & has_email)
    parts.append((em, "email", ch.emails.take(pa.array(em))))
    dev_person, dev = np.nonzero(seen.device)
    parts.append(
        (dev_person, "anonymous_id", ids.anonymous_ids((ch.lo + dev_person) * MAX_DEVICES + dev, ch.seed))
    )
    tables = [
        pa.table(
            {
                "true_person_id": person_ids(ch.lo + local),
                "identifier_type": pa.repeat(pa.scalar(kind), len(local)),
                "identifier": pc.cast(values, pa.string()),
            },
            schema=TRUTH_SCHEMAS["identities"],
        )
        for local, kind, values in parts
    ]
    return pa.concat_tables(tables)


def persons(ch: Chunk, orders: OrdersOutput, esp: EspOutput, in_crm: np.ndarray) -> pa.Table:
    p, tl = ch.persons, ch.tl
    sl = slice(ch.lo, ch.hi)
    kind = p.kind[sl]
    has_email = kind <= Kind.PROSPECT_ESP
    buyer = kind <= Kind.GUEST
    death = p.death_at[sl]
    death_known = death < max(tl.end, tl.cutoff)
    categories = fmt.vocabulary([c[0] for c in vocab.CATEGORIES])
    return pa.table(
        {
            "true_person_id": person_ids(ch.idx),
            "person_type": fmt.vocabulary(KIND_NAMES).take(pa.array(kind.astype(np.int32))),
            "email": ch.emails,
            "has_shop_account": pa.array(kind == Kind.REGISTERED),
            "is_guest_only": pa.array(kind == Kind.GUEST),
            "is_bot": pa.array(kind == Kind.BOT),
            "in_crm": pa.array(in_crm),
            "country": fmt.vocabulary([c[0] for c in vocab.COUNTRIES]).take(
                pa.array(p.country[sl].astype(np.int32))
            ),
            "acquired_at": _ts(p.acquired_at[sl]),
            "purchase_rate_per_year": pa.array(p.lam[sl] * 365.0),
            "dropout_rate_per_year": pa.array(p.mu[sl] * 365.0),
            "death_at": _ts(np.where(death_known, death, 0), death_known),
            "is_alive_at_as_of": pa.array(death >= tl.cutoff),
            "spend_nu": pa.array(np.where(buyer, p.nu[sl], np.nan), mask=~buyer),
            "expected_order_value_usd": pa.array(np.where(buyer, SPEND_P / p.nu[sl], np.nan), mask=~buyer),
            "email_engagement": pa.array(np.where(has_email, p.engagement[sl], np.nan), mask=~has_email),
            "preferred_category": categories.take(pa.array(p.pref_cat[sl].astype(np.int32))),
            "uses_apple_mail": pa.array(p.apple_mail[sl]),
            "n_devices": pa.array(p.n_devices[sl].astype(np.int64)),
            "orders_before_as_of": pa.array(orders.past_orders_per_person.astype(np.int64)),
            "email_opted_out": pa.array(esp.opted_out),
            "is_erased": pa.array(p.erasure_at[sl] < tl.cutoff),
            "is_hard_bounced": pa.array(esp.hard_bounced),
        },
        schema=TRUTH_SCHEMAS["persons"],
    )


def future_orders(ch: Chunk, orders: OrdersOutput) -> pa.Table:
    return pa.table(
        {
            "true_person_id": person_ids(ch.idx),
            "future_order_count": pa.array(orders.future_count.astype(np.int64)),
            "future_order_value": pa.array(orders.future_value.astype(np.float64)),
        },
        schema=TRUTH_SCHEMAS["future_orders"],
    )


def fx_rates() -> pa.Table:
    return pa.table(
        {
            "currency": [c for c, _ in vocab.CURRENCIES],
            "units_per_usd": [rate for _, rate in vocab.CURRENCIES],
        },
        schema=TRUTH_SCHEMAS["fx_rates"],
    )
