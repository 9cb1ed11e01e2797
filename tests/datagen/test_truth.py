"""The ground truth agrees with the raw data: identities, person states, future orders."""

from __future__ import annotations

from typing import TYPE_CHECKING

from datagen.schema import VALID_EMAIL_PATTERN

if TYPE_CHECKING:
    from tests.datagen.conftest import Dataset

RAW_IDENTIFIERS = f"""
    select 'crm_customer_id' as identifier_type, customer_id as identifier from crm_customers
    union all select 'shop_customer_id', customer_id from shop_orders where customer_id is not null
    union all select 'shop_customer_id', user_id from web_events where user_id is not null
    union all select 'anonymous_id', anonymous_id from web_events
    union all select 'email', e from (
        select lower(trim(email)) as e from crm_customers
        union all select lower(trim(email)) from shop_orders where email not like '%@test.invalid'
        union all select lower(trim(email)) from esp_events
        union all select lower(trim(email)) from consent_events
        union all select lower(trim(email)) from privacy_requests
    ) where regexp_full_match(e, '{VALID_EMAIL_PATTERN}')
"""


def test_identities_are_exactly_the_identifiers_in_raw_data(main: Dataset) -> None:
    assert (
        main.one("""
        select count(*) from (select identifier_type, identifier from truth_identities
                              group by all having count(*) > 1)""")
        == 0
    )
    missing = main.sql(f"""
        select distinct r.identifier_type, r.identifier from ({RAW_IDENTIFIERS}) r
        anti join truth_identities t using (identifier_type, identifier) limit 5""")
    assert missing == []
    extra = main.sql(f"""
        select identifier_type, identifier from truth_identities
        anti join ({RAW_IDENTIFIERS}) r using (identifier_type, identifier) limit 5""")
    assert extra == []
    types = dict(main.sql("select identifier_type, count(*) from truth_identities group by 1"))
    assert set(types) == {"crm_customer_id", "shop_customer_id", "email", "anonymous_id"}


def test_identifiers_on_one_raw_row_belong_to_one_person(main: Dataset) -> None:
    """The links the pipeline uses (id + email on a row, anonymous_id + user_id on an event) are true."""
    pairs = {
        "crm_customers": ("crm_customer_id", "customer_id", "email", "lower(trim(email))"),
        "shop_orders": ("shop_customer_id", "customer_id", "email", "lower(trim(email))"),
        "web_events": ("anonymous_id", "anonymous_id", "shop_customer_id", "user_id"),
    }
    for source, (t1, c1, t2, c2) in pairs.items():
        linked, conflicting = main.sql(f"""
            select count(*), count(*) filter (where a.true_person_id <> b.true_person_id)
            from {source} r
            join truth_identities a on a.identifier_type = '{t1}' and a.identifier = r.{c1}
            join truth_identities b on b.identifier_type = '{t2}' and b.identifier = {c2}""")[0]
        assert linked > 100 and conflicting == 0, source


def test_crm_duplicates_are_extra_ids_of_an_existing_person(main: Dataset) -> None:
    rows = main.sql("""
        select d.detail, count(*), count(distinct i.true_person_id),
               count(*) filter (where i.true_person_id in (
                   select true_person_id from truth_identities
                   where identifier_type = 'crm_customer_id'
                   group by 1 having count(*) = 2))
        from truth_defects d
        join truth_identities i on i.identifier_type = 'crm_customer_id'
             and i.identifier = split_part(d.row_key, '|', 1)
        where d.defect_type = 'duplicate_person_record'
        group by 1 order by 1""")
    assert [r[0] for r in rows] == ["legacy_system", "same_system"]
    for detail, n, persons, with_two_ids in rows:
        assert n == persons == with_two_ids > 0, detail
    legacy_prefixes = main.one("""
        select list(distinct left(split_part(row_key, '|', 1), 1)) from truth_defects
        where defect_type = 'duplicate_person_record' and detail = 'legacy_system'""")
    assert legacy_prefixes == ["L"]


def test_persons_table_counts_and_kinds(main: Dataset) -> None:
    cfg = main.config
    kinds = dict(main.sql("select person_type, count(*) from truth_persons group by 1"))
    assert sum(kinds[k] for k in ("registered", "guest", "prospect_crm", "prospect_esp")) == cfg.customers
    assert kinds["anonymous"] == round(cfg.anonymous_share * cfg.customers)
    assert kinds["bot"] == round(cfg.defects.bot_visitor * cfg.customers)
    assert main.one("select count(distinct true_person_id) from truth_persons") == main.summary.persons
    # Emails only for customers and prospects; bots flagged; guests never have an account.
    assert (
        main.one(
            "select count(*) from truth_persons where (email is null) <> "
            "(person_type in ('anonymous', 'bot'))"
        )
        == 0
    )
    assert main.one("select count(*) from truth_persons where is_bot <> (person_type = 'bot')") == 0
    assert main.one("select count(*) from truth_persons where is_guest_only and has_shop_account") == 0
    # Every identity belongs to a known person.
    assert (
        main.one("select count(*) from truth_identities anti join truth_persons using (true_person_id)") == 0
    )


def test_guests_have_no_web_identity_and_anonymous_visitors_never_log_in(main: Dataset) -> None:
    by_type = dict(
        main.sql("""
        select p.person_type, count(*) from web_events w
        join truth_identities i on i.identifier_type = 'anonymous_id' and i.identifier = w.anonymous_id
        join truth_persons p using (true_person_id) group by 1""")
    )
    assert set(by_type) == {"registered", "anonymous", "bot"}
    assert (
        main.one("""
        select count(*) from web_events w
        join truth_identities i on i.identifier_type = 'anonymous_id' and i.identifier = w.anonymous_id
        join truth_persons p using (true_person_id)
        where p.person_type <> 'registered' and w.user_id is not null""")
        == 0
    )


def test_every_device_of_a_registered_person_is_linked_by_login_or_signup(main: Dataset) -> None:
    unlinked = main.one("""
        select count(*) from (select distinct anonymous_id from web_events) a
        join truth_identities i on i.identifier_type = 'anonymous_id' and i.identifier = a.anonymous_id
        join truth_persons p using (true_person_id)
        where p.has_shop_account and not exists (
            select 1 from web_events w where w.anonymous_id = a.anonymous_id
            and w.event_type in ('login', 'signup') and w.user_id is not null)""")
    assert unlinked == 0
    multi = main.one("""
        select count(*) from (select true_person_id from truth_identities
                              where identifier_type = 'anonymous_id' group by 1 having count(*) > 1)""")
    assert multi > 50


def test_erased_persons_filed_an_erasure_request(main: Dataset) -> None:
    mismatch = main.one("""
        select count(*) from truth_persons p
        full join (select distinct lower(trim(email)) as email from privacy_requests
                   where request_type = 'erasure') r on r.email = p.email
        where coalesce(p.is_erased, false) <> (r.email is not null)""")
    assert mismatch == 0
    assert main.one("select count(*) filter (where is_erased) from truth_persons") == round(
        main.config.erasure_share * main.config.customers
    )
    # After the request nobody emails them.
    assert (
        main.one("""
        select count(*) from esp_events e join privacy_requests r
          on lower(trim(e.email)) = lower(trim(r.email)) and r.request_type = 'erasure'
        where e.event_type = 'sent' and try_cast(e.event_at as timestamptz) > r.requested_at::timestamptz""")
        == 0
    )


def test_opt_out_and_hard_bounce_states_match_the_raw_events(main: Dataset) -> None:
    mismatch = main.one("""
        with latest as (
            select lower(trim(email)) as email, arg_max(status, event_at::timestamptz) as status
            from consent_events where channel = 'email' group by 1)
        select count(*) from truth_persons p left join latest l using (email)
        where p.email is not null and p.email_opted_out <> coalesce(l.status = 'opted_out', false)""")
    assert mismatch == 0
    bounced = main.one("""
        select count(*) from truth_persons p
        left join (select distinct lower(trim(email)) as email from esp_events
                   where event_type = 'bounce' and bounce_type = 'hard') b using (email)
        where p.email is not null and p.is_hard_bounced <> (b.email is not null)""")
    assert bounced == 0
    assert main.one("select count(*) filter (where email_opted_out) from truth_persons") > 20
    assert main.one("select count(*) filter (where is_hard_bounced) from truth_persons") > 5


def test_future_orders_are_after_as_of_and_consistent(main: Dataset) -> None:
    cutoff = main.cutoff
    horizon_end = main.one("select ?::timestamptz + to_days(?)", [cutoff, main.config.horizon_days])
    lo, hi, n = main.sql("select min(order_at), max(order_at), count(*) from truth_future_order_details")[0]
    assert n > 100 and lo >= cutoff and hi < horizon_end
    # The per-person totals are the non-cancelled, non-refunded details.
    diff = main.one("""
        select count(*) from truth_future_orders f left join (
            select true_person_id, count(*) as n, sum(value) as v from truth_future_order_details
            where status = 'completed' group by 1) d using (true_person_id)
        where f.future_order_count <> coalesce(d.n, 0)
           or abs(f.future_order_value - coalesce(d.v, 0)) > 0.01""")
    assert diff == 0
    assert main.one("select count(*) from truth_future_orders") == main.summary.persons
    # Future orders never leak into the raw data, and only persons who bought before get them.
    assert (
        main.one("""select count(*) from truth_future_order_details d
                       join shop_orders o using (order_id)""")
        == 0
    )
    assert (
        main.one("""select count(*) from truth_future_order_details d
                    join truth_persons p using (true_person_id)
                       where p.person_type not in ('registered', 'guest')""")
        == 0
    )


def test_fx_rates_cover_exactly_the_currencies_used(main: Dataset) -> None:
    used = {
        r[0]
        for r in main.sql("""
        select distinct o.currency from shop_orders o anti join truth_defects d
          on d.source = 'shop_orders' and d.defect_type = 'unknown_currency'
         and d.row_key = o.order_id || '|' || o.updated_at""")
    }
    assert (
        used
        == {r[0] for r in main.sql("select currency from truth_fx_rates")}
        == {"USD", "EUR", "GBP", "CAD"}
    )


def test_no_one_is_logged_in_before_signing_up(main: Dataset) -> None:
    early = main.one("""
        with signup as (select user_id, min(event_at::timestamptz) as t from web_events
                        where event_type = 'signup' group by 1)
        select count(*) from web_events w join signup s using (user_id)
        where try_cast(w.event_at as timestamptz) < s.t""")
    assert early == 0
    signups = main.one("select count(distinct user_id) from web_events where event_type = 'signup'")
    accounts = main.one("select count(*) from truth_persons where has_shop_account")
    assert signups == accounts
