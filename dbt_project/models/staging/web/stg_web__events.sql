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
--   - the kept deliveries that base_web__events wrote since this model's last run (its loaded_at, macro
--     loaded_after_this). base_ rewrites every delivery of each event_id a new landing file carries and
--     each event held as future_dated that the clock has caught up with, so these are the new events,
--     re-deliveries that now win over the first receipt (the merge on event_id replaces the older row), and
--     the events no longer held back;
--   - every event whose is_unknown_product no longer matches the product catalogue (a product added or
--     dropped by a products delivery), with only that flag recomputed.
-- A clean event never turns quarantined or disappears while landing files are only added (the clock only
-- moves forward). Editing or removing a landing file, or changing var bot_user_agent_pattern, needs
-- --full-refresh, as for base_web__events.
-- Both are a few rows of tables of millions, found from their narrow columns first and only then read in
-- full (rows_where).
with catalogue as (

    select product_id from {{ ref('stg_shop__products') }}

),

-- Read twice (the distinct user agents, then every row). On a full build each read goes back to base_
-- (not_materialized): held as a temporary result, the wide rows cost more to write and read back than a
-- second scan of the table. An increment is small: held once.
first_deliveries as {{ not_materialized() if not is_incremental() }} (

    {{ kept_deliveries(ref('base_web__events')) }}

),

user_agents as (

    -- Each distinct user agent is matched against the bot pattern once: agents are far fewer than events,
    -- and the pattern match per event was the dearest expression of the model.
    select
        user_agent,
        {{ is_bot_user_agent('user_agent') }} as is_bot
    from (select distinct user_agent from first_deliveries) as delivered_agents

),

fresh_rows as (

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
        first_deliveries.source_file
    from first_deliveries
    left join catalogue
        on first_deliveries.product_id = catalogue.product_id
    left join user_agents
        on first_deliveries.user_agent = user_agents.user_agent

),

{% if is_incremental() %}
    reflagged_rows as (

        -- Held events whose product joined or left the catalogue: only is_unknown_product changes (it
        -- flips).
        {%- set flag_is_stale -%}
            product_id is not null and is_unknown_product = (
                product_id in (select catalogue.product_id from catalogue where catalogue.product_id is not null)
            )
        {%- endset %}
        select
            loaded.event_id,
            loaded.anonymous_id,
            loaded.user_id,
            loaded.event_type,
            loaded.product_id,
            not loaded.is_unknown_product as is_unknown_product,
            loaded.url,
            loaded.search_query,
            loaded.user_agent,
            loaded.is_bot,
            loaded.event_at,
            loaded.received_at,
            loaded.source_file
        from ({{ rows_where(this, flag_is_stale) }}) as loaded

    ),
{% endif %}

written_rows as (

    select * from fresh_rows
    {%- if is_incremental() %}
        union all
        select * from reflagged_rows
        where reflagged_rows.event_id not in (select fresh_rows.event_id from fresh_rows)
    {%- endif %}

)

select
    *,
    {{ this_run_loaded_at() }} as loaded_at
from written_rows
