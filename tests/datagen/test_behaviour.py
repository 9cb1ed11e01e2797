"""The behaviour model: the signals the warehouse and the ML layer are meant to find are really there."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from datagen import SOURCES, vocab

if TYPE_CHECKING:
    from tests.datagen.conftest import Dataset

MACHINE_UAS = f"('{vocab.APPLE_MPP_USER_AGENT}', '{vocab.SCANNER_USER_AGENT}')"
PERSON_OF_EMAIL = (
    "join truth_identities i on i.identifier_type = 'email' and i.identifier = lower(trim({col}))"
)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    def ranks(v: np.ndarray) -> np.ndarray:
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v))
        # average ranks of ties
        _, inv, counts = np.unique(v, return_inverse=True, return_counts=True)
        sums = np.bincount(inv, weights=r)
        return sums[inv] / counts[inv]

    return float(np.corrcoef(ranks(np.asarray(x, float)), ranks(np.asarray(y, float)))[0, 1])


def test_row_counts_scale_linearly_with_customers(small: Dataset, main: Dataset) -> None:
    factor = main.config.customers / small.config.customers
    for source in SOURCES:
        if source == "products":
            continue  # the catalogue grows much more slowly than the customer base
        ratio = main.summary.rows[source] / small.summary.rows[source]
        assert 0.8 * factor <= ratio <= 1.2 * factor, (source, ratio)
    rows = main.summary.rows
    assert rows["web_events"] == max(rows.values())


def test_frequent_buyers_engage_more_with_email(main: Dataset) -> None:
    data = np.array(
        main.sql(f"""
        with sent as (
            select i.true_person_id, count(*) filter (where e.event_type in ('open', 'click')
                   and e.user_agent not in {MACHINE_UAS}) as human
            from esp_events e {PERSON_OF_EMAIL.format(col="e.email")}
            group by 1 having count(*) filter (where e.event_type = 'sent') > 0),
        bought as (
            select i.true_person_id, count(distinct o.order_id) as orders
            from shop_orders o {PERSON_OF_EMAIL.format(col="o.email")} group by 1)
        select coalesce(b.orders, 0), s.human from sent s left join bought b using (true_person_id)"""),
        dtype=float,
    )
    assert len(data) > 1000
    rho = spearman(data[:, 0], data[:, 1])
    assert rho > 0.25, rho


def test_engagement_fades_after_dropout(main: Dataset) -> None:
    dead, alive = main.sql(f"""
        select avg(human) filter (where churned), avg(human) filter (where not churned) from (
            select p.true_person_id,
                   p.death_at < to_timestamp({int(main.cutoff.timestamp())}) - interval 120 day
                   as churned,
                   count(*) filter (where e.event_type = 'open' and e.user_agent not in {MACHINE_UAS})
                   / count(*) filter (where e.event_type = 'delivered') as human
            from esp_events e {PERSON_OF_EMAIL.format(col="e.email")}
            join truth_persons p using (true_person_id)
            where p.person_type in ('registered', 'guest')
            group by all having count(*) filter (where e.event_type = 'delivered') > 0)""")[0]
    assert dead < 0.5 * alive, (dead, alive)


def test_co_purchases_are_structured(clean: Dataset) -> None:
    lines = clean.sql("""
        select l.order_id, p.category from shop_order_lines l
        join (select distinct product_id, category from products) p using (product_id)
        order by l.order_id, l.order_line_id""")
    order_ids = np.array([r[0] for r in lines])
    names = [c[0] for c in vocab.CATEGORIES]
    cats = np.array([names.index(r[1]) for r in lines])
    related = np.zeros((len(names), len(names)), dtype=bool)
    for c, comps in enumerate(vocab.COMPLEMENTS):
        related[c, c] = True
        related[c, list(comps)] = True
        related[list(comps), c] = True

    def share(categories: np.ndarray) -> float:
        # pairs of consecutive lines within an order (each multi-line order contributes its pairs)
        same_order = order_ids[1:] == order_ids[:-1]
        return float(related[categories[:-1][same_order], categories[1:][same_order]].mean())

    actual = share(cats)
    shuffled = np.mean([share(np.random.default_rng(k).permutation(cats)) for k in range(5)])
    assert actual > 1.8 * shuffled and actual - shuffled > 0.2, (actual, shuffled)


def test_purchase_history_predicts_the_future(main: Dataset) -> None:
    rows = np.array(
        main.sql("""
        select p.purchase_rate_per_year, p.orders_before_as_of, f.future_order_count, p.is_alive_at_as_of::int
        from truth_persons p join truth_future_orders f using (true_person_id)
        where p.person_type in ('registered', 'guest')"""),
        dtype=float,
    )
    assert spearman(rows[:, 0], rows[:, 1]) > 0.3
    assert spearman(rows[:, 1], rows[:, 2]) > 0.2
    # The dead do not buy; recent, frequent buyers do.
    assert rows[(rows[:, 3] == 0), 2].sum() == 0
    assert rows[:, 2].sum() > 100


def test_seasonal_peak_in_november_and_december(main: Dataset) -> None:
    peak, base = main.sql("""
        select count(*) filter (where d between '2024-11-15' and '2024-12-20') / 36,
               count(*) filter (where d between '2024-09-01' and '2024-10-31') / 61
        from (select distinct order_id, created_at::timestamptz::date as d from shop_orders
              where try_cast(created_at as timestamptz) is not null)""")[0]
    assert peak > 1.3 * base, (peak, base)


def test_orders_money_and_versions_are_consistent(clean: Dataset) -> None:
    bad_totals = clean.one("""
        select count(*) from shop_orders o join (
            select order_id, sum(quantity::int * unit_price::decimal(18, 2)) as s
            from shop_order_lines group by 1
        ) l using (order_id)
        where o.subtotal::decimal(18, 2) <> l.s
           or o.total::decimal(18, 2) <> o.subtotal::decimal(18, 2) - o.discount::decimal(18, 2)
                                         + o.shipping::decimal(18, 2) + o.tax::decimal(18, 2)""")
    assert bad_totals == 0
    assert clean.one("select count(*) from shop_orders anti join shop_order_lines using (order_id)") == 0
    aov = clean.one("""
        select avg(o.total::double / fx.units_per_usd) from (
            select order_id, arg_max(total, updated_at::timestamptz) as total, any_value(currency) as currency
            from shop_orders group by 1) o join truth_fx_rates fx using (currency)""")
    assert 40 <= aov <= 120, aov
    currencies = dict(clean.sql("select currency, count(distinct order_id) from shop_orders group by 1"))
    assert max(currencies, key=currencies.get) == "USD" and set(currencies) == {"USD", "EUR", "GBP", "CAD"}
    # Versions move forward: placed < paid < shipped < refunded; cancellations end an order.
    backwards = clean.one("""
        select count(*) from (
            select order_id, status, updated_at::timestamptz as t,
                   lag(status) over (partition by order_id order by updated_at::timestamptz) as prev
            from shop_orders)
        where (prev, status) not in (('placed', 'paid'), ('placed', 'shipped'), ('paid', 'shipped'),
                                     ('shipped', 'refunded'), ('placed', 'refunded'), ('paid', 'refunded'),
                                     ('placed', 'cancelled'), ('paid', 'cancelled')) and prev is not null""")
    assert backwards == 0
    versions = clean.one("select avg(n) from (select count(*) as n from shop_orders group by order_id)")
    assert 1.5 < versions < 3.5
    finals = dict(
        clean.sql("""select status, count(*) from (
        select arg_max(status, updated_at::timestamptz) as status from shop_orders group by order_id)
        group by 1""")
    )
    assert finals["cancelled"] > 0 and finals["refunded"] > 0 and finals["shipped"] > finals["cancelled"]
    guests = clean.one("select count(distinct order_id) from shop_orders where customer_id is null")
    assert guests > 0


def test_browsing_precedes_purchases(clean: Dataset) -> None:
    """Registered customers view and cart what they buy, just before the order; some carts are abandoned."""
    share_viewed, share_checkout = clean.sql("""
        with orders as (
            select order_id, any_value(customer_id) as customer_id, min(created_at::timestamptz) as at
            from shop_orders where customer_id is not null group by 1),
        lines as (select o.order_id, o.customer_id, o.at, l.product_id
                  from orders o join shop_order_lines l using (order_id)),
        devices as (
            select distinct s.identifier as customer_id, a.identifier as anonymous_id
            from truth_identities s join truth_identities a using (true_person_id)
            where s.identifier_type = 'shop_customer_id' and a.identifier_type = 'anonymous_id')
        select
          avg((exists (select 1 from web_events w join devices d using (anonymous_id)
                       where d.customer_id = lines.customer_id and w.product_id = lines.product_id
                         and w.event_type = 'product_view'
                         and w.event_at::timestamptz between lines.at - interval 2 hour and lines.at))::int),
          (select avg((exists (select 1 from web_events w join devices d using (anonymous_id)
                       where d.customer_id = orders.customer_id and w.event_type = 'checkout_started'
                         and w.event_at::timestamptz
                             between orders.at - interval 10 minute and orders.at))::int)
           from orders)
        from lines""")[0]
    assert share_viewed > 0.99 and share_checkout > 0.99, (share_viewed, share_checkout)
    abandoned = clean.one("""
        select avg((not exists (select 1 from shop_orders o where o.customer_id = w.user_id
                    and o.created_at::timestamptz between w.event_at::timestamptz
                    and w.event_at::timestamptz + interval 1 day))::int)
        from web_events w where w.event_type = 'add_to_cart' and w.user_id is not null""")
    assert 0.05 < abandoned < 0.9
    searches = clean.one(
        "select count(*) from web_events where event_type = 'search' and search_query is not null"
    )
    assert searches > 100


def test_email_respects_consent_bounces_and_unsubscribes(clean: Dataset) -> None:
    # Every send goes to an address whose latest email consent at that moment is opted_in.
    unconsented = clean.one("""
        with consent as (select lower(trim(email)) as email, event_at::timestamptz as t, status
                         from consent_events where channel = 'email'),
        sends as (select lower(trim(email)) as email, event_at::timestamptz as t from esp_events
                  where event_type = 'sent')
        select count(*) from sends s asof left join consent c on s.email = c.email and s.t >= c.t
        where c.status is distinct from 'opted_in'""")
    assert unconsented == 0
    after_bounce = clean.one("""
        select count(*) from esp_events s join esp_events b on s.email = b.email
        where b.event_type = 'bounce' and b.bounce_type = 'hard' and s.event_type = 'sent'
          and s.event_at::timestamptz > b.event_at::timestamptz""")
    assert after_bounce == 0
    unmatched = clean.one("""
        select count(*) from esp_events e where e.event_type in ('unsubscribe', 'spam_complaint')
        and not exists (select 1 from consent_events c where c.email = e.email and c.status = 'opted_out'
                        and c.source in ('esp_unsubscribe', 'esp_spam_complaint')
                        and c.event_at::timestamptz = e.event_at::timestamptz)""")
    assert unmatched == 0
    assert clean.one("select count(*) from esp_events where event_type = 'unsubscribe'") > 5
    campaigns = clean.one("select count(distinct campaign_id) from esp_events")
    assert 20 <= campaigns <= 30


def test_apple_mail_users_open_every_delivered_email_within_seconds(clean: Dataset) -> None:
    per_type = dict(
        clean.sql(f"""
        select p.uses_apple_mail,
               count(*) filter (where e.event_type = 'open' and e.user_agent = '{vocab.APPLE_MPP_USER_AGENT}')
               / count(*) filter (where e.event_type = 'delivered')
        from esp_events e {PERSON_OF_EMAIL.format(col="e.email")} join truth_persons p using (true_person_id)
        group by 1""")
    )
    assert per_type[False] == 0
    assert 0.95 <= per_type[True] <= 1.0  # the last campaign's opens may fall after as_of
    slow = clean.one(f"""
        select count(*) from esp_events o join esp_events d
          on o.email = d.email and o.campaign_id = d.campaign_id and d.event_type = 'delivered'
        where o.user_agent = '{vocab.APPLE_MPP_USER_AGENT}'
          and o.event_at::timestamptz - d.event_at::timestamptz > interval 10 second""")
    assert slow == 0


def test_catalogue_has_versions_and_skewed_popularity(main: Dataset) -> None:
    n_products, n_rows, categories, inactive, repriced = main.sql("""
        select count(distinct product_id), count(*), count(distinct category),
               count(distinct product_id) filter (where is_active = 'false'),
               (select count(*) from (select product_id from products group by 1
                                      having count(distinct price) > 1))
        from products""")[0]
    assert n_rows > 1.5 * n_products and categories == len(vocab.CATEGORIES)
    assert inactive > 0 and repriced > 0.3 * n_products
    top_share = main.one("""
        with q as (select product_id, sum(try_cast(quantity as int)) as q from shop_order_lines group by 1)
        select sum(q) filter (where r <= 0.1) / sum(q)
        from (select q, percent_rank() over (order by q desc) as r
                                                             from q)""")
    assert top_share > 0.35, top_share
