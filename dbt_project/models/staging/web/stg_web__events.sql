-- One row per web event (duplicate deliveries collapsed). Bot traffic stays here, flagged, so that it is
-- accounted for; behaviour models filter on is_bot.
-- Incremental, merged by event_id: sessions, the identity graph, the reconciliation and every data test read
-- it, and rebuilding it over every event after each landing file was among the dearest steps of a run.
{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

-- An incremental run rewrites exactly the events whose row a full refresh would change, so it equals a
-- full refresh (tests/dbt/test_incremental_events.py):
--   - every event with a delivery in a landing file this model has not seen yet (a new event, or a
--     re-delivery that may win over the first receipt; base_web__events has already re-ranked all of that
--     event's deliveries);
--   - every clean event later than the latest event held here: events held back as future_dated become
--     clean only when the data clock moves past them, and then they lie after everything already loaded;
--   - every event whose is_unknown_product no longer matches the product catalogue (a product added or
--     dropped by a products delivery).
-- A clean event never turns quarantined or disappears while landing files are only added (the clock only
-- moves forward). Editing or removing a landing file, or changing var bot_user_agent_pattern, needs
-- --full-refresh, as for base_web__events. A landing file none of whose rows is kept here (all quarantined
-- or superseded) counts as unseen on every run: its events are rewritten again, unchanged.
with catalogue as (

    select product_id from {{ ref('stg_shop__products') }}

),

{% if is_incremental() %}
    loaded_files as (

        select distinct source_file from {{ this }}

    ),

    latest_loaded as (

        select max(event_at) as event_at from {{ this }}

    ),

    changed_events as (

        select deliveries.event_id
        from {{ ref('base_web__events') }} as deliveries
        where deliveries.source_file not in (select loaded_files.source_file from loaded_files)

        union

        select deliveries.event_id
        from {{ ref('base_web__events') }} as deliveries
        cross join latest_loaded
        where
            deliveries.quarantine_reason is null
            and (latest_loaded.event_at is null or deliveries.event_at > latest_loaded.event_at)

        union

        select loaded.event_id
        from {{ this }} as loaded
        left join catalogue
            on loaded.product_id = catalogue.product_id
        where
            loaded.product_id is not null
            and loaded.is_unknown_product <> (catalogue.product_id is null)

    ),
{% endif %}

first_deliveries as (

    select * from {{ ref('base_web__events') }}
    where
        quarantine_reason is null
        and not is_superseded
        {%- if is_incremental() %}
            and event_id in (select changed_events.event_id from changed_events)
        {%- endif %}

),

user_agents as (

    -- Each distinct user agent is matched against the bot pattern once: agents are far fewer than events,
    -- and the pattern match per event was the dearest expression of the model.
    select
        user_agent,
        {{ is_bot_user_agent('user_agent') }} as is_bot
    from (select distinct user_agent from first_deliveries) as delivered_agents

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
    coalesce(first_deliveries.received_at, first_deliveries.event_at) as received_at,
    first_deliveries.source_file,
    {{ this_run_loaded_at() }} as loaded_at
from first_deliveries
left join catalogue
    on first_deliveries.product_id = catalogue.product_id
left join user_agents
    on first_deliveries.user_agent = user_agents.user_agent
