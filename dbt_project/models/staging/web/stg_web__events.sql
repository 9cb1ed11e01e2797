-- One row per web event (duplicate deliveries collapsed). Bot traffic stays here, flagged, so that it is
-- accounted for; behaviour models filter on is_bot.
-- A table, not a view: sessions, the identity graph, the reconciliation and every data test read it, and a
-- view would redo the join and the user-agent matching over millions of events for each of them.
{{ config(materialized='table') }}

with first_deliveries as (

    select * from {{ ref('base_web__events') }}
    where
        quarantine_reason is null
        and not is_superseded

),

catalogue as (

    select product_id from {{ ref('stg_shop__products') }}

),

user_agents as (

    -- Each distinct user agent is matched against the bot pattern once: agents are far fewer than events,
    -- and the pattern match per event was the dearest expression of the model.
    select
        user_agent,
        {{ is_bot_user_agent('user_agent') }} as is_bot
    from (select distinct user_agent from {{ ref('base_web__events') }}) as delivered_agents

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
    -- A missing user agent is not a bot (no match), as is_bot_user_agent says.
    coalesce(user_agents.is_bot, false) as is_bot,
    first_deliveries.event_at,
    coalesce(first_deliveries.received_at, first_deliveries.event_at) as received_at
from first_deliveries
left join catalogue
    on first_deliveries.product_id = catalogue.product_id
left join user_agents
    on first_deliveries.user_agent = user_agents.user_agent
