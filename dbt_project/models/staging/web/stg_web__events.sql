-- One row per web event (duplicate deliveries collapsed). Bot traffic stays here, flagged, so that it is
-- accounted for; behaviour models filter on is_bot.
-- A view over base_web__events, its clean first deliveries: base_ (incremental, merged by event_id) already
-- holds every column, and copying its tens of millions of kept rows into a second table was among the dearest
-- steps of a build. A view is always current, so it needs no incremental logic of its own: loaded_at is
-- base_'s, which rewrites every delivery of each event_id a new landing file carries and each event held as
-- future_dated that the clock has caught up with, so downstream incremental models find the rows that changed
-- by it. is_unknown_product is looked up here, when the view is read: it follows the product catalogue as it
-- is now, and only the full-refresh marts read it.
with first_deliveries as (

    select * from {{ ref('base_web__events') }}
    where quarantine_reason is null and not is_superseded

),

catalogue as (

    select product_id from {{ ref('stg_shop__products') }}

)

select
    first_deliveries.event_id,
    first_deliveries.anonymous_id,
    first_deliveries.user_id,
    first_deliveries.event_type,
    first_deliveries.product_id,
    first_deliveries.product_id is not null and catalogue.product_id is null as is_unknown_product,
    first_deliveries.url,
    first_deliveries.search_query,
    first_deliveries.user_agent,
    first_deliveries.is_bot,
    first_deliveries.event_at,
    coalesce(first_deliveries.received_at, first_deliveries.event_at) as received_at,
    first_deliveries.source_file,
    first_deliveries.loaded_at
from first_deliveries
left join catalogue
    on first_deliveries.product_id = catalogue.product_id
