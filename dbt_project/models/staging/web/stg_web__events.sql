-- One row per web event (duplicate deliveries collapsed). Bot traffic stays here, flagged, so that it is
-- accounted for; behaviour models filter on is_bot.
-- A view over base_web__events, its clean first deliveries: base_ (incremental, merged by event_id) already
-- holds every column, and copying its tens of millions of kept rows into a second table was among the dearest
-- steps of a build. A view is always current, so it needs no incremental logic of its own: loaded_at is
-- base_'s, which rewrites every delivery of each event_id a new landing file carries and each event held as
-- future_dated that the clock has caught up with, so downstream incremental models find the rows that changed
-- by it. is_unknown_product is looked up here, when the view is read: it follows the product catalogue as it
-- is now, and only the full-refresh marts read it.
with catalogue as (

    select product_id from {{ ref('stg_shop__products') }}
    where product_id is not null

)

select
    event_id,
    anonymous_id,
    user_id,
    event_type,
    product_id,
    -- A lookup (`not in`) rather than a left join: readers that filter on it (the marts) cost less, by 0.7 of
    -- 1.6 s CPU added to customer_360 at 100k customers.
    product_id is not null and product_id not in (select catalogue.product_id from catalogue) as is_unknown_product,
    url,
    search_query,
    user_agent,
    is_bot,
    event_at,
    coalesce(received_at, event_at) as received_at,
    source_file,
    loaded_at
from {{ ref('base_web__events') }}
where quarantine_reason is null and not is_superseded
