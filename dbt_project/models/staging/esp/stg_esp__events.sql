-- One row per ESP event (duplicate webhook deliveries collapsed). Machine opens (Apple Mail Privacy
-- Protection, image proxies, link scanners) are flagged so that open rates count people, not proxies.
-- Incremental, merged by event_id: the identity graph, the reconciliation, the email marts and every data
-- test read it, and rebuilding it over every event after each landing file was among the dearest steps.
{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

-- An incremental run rewrites exactly the events whose row a full refresh would change, so it equals a
-- full refresh (tests/dbt/test_incremental_events.py): the kept deliveries that base_esp__events wrote
-- since this model's last run (its loaded_at, macro loaded_after_this). base_ rewrites every delivery of
-- each event_id a new landing file carries and each event held as future_dated that the clock has caught
-- up with, so these are the new events, re-deliveries that now win (the merge on event_id replaces the
-- older row), and the events no longer held back. A clean event never turns quarantined or disappears
-- while landing files are only added (the clock only moves forward). Editing or removing a landing file,
-- or changing var machine_open_user_agent_pattern, needs --full-refresh, as for base_esp__events.
-- first_deliveries is read twice (the distinct user agents, then every row). On a full build each read
-- goes back to base_ (not_materialized): held as a temporary result, the wide rows cost more to write and
-- read back than a second scan of the table. An increment is a few rows of millions, found from their
-- narrow columns first and only then read in full (rows_where), and held once.
with first_deliveries as {{ not_materialized() if not is_incremental() }} (

    {{ kept_deliveries(ref('base_esp__events')) }}

),

user_agents as (

    -- Each distinct user agent is matched against the machine-open pattern once: agents are far fewer than
    -- events, and the pattern match per event was the dearest expression of the model.
    select
        user_agent,
        {{ is_machine_open_user_agent('user_agent') }} as is_machine_open_agent
    from (select distinct user_agent from first_deliveries) as delivered_agents

)

select
    first_deliveries.event_id,
    first_deliveries.email,
    first_deliveries.campaign_id,
    first_deliveries.event_type,
    case when first_deliveries.event_type = 'bounce' then coalesce(first_deliveries.bounce_type, 'soft') end
        as bounce_type,
    first_deliveries.url,
    first_deliveries.user_agent,
    -- A missing user agent is not a machine (no match), as is_machine_open_user_agent says.
    first_deliveries.event_type = 'open' and coalesce(user_agents.is_machine_open_agent, false) as is_machine_open,
    first_deliveries.event_at,
    first_deliveries.source_file,
    {{ this_run_loaded_at() }} as loaded_at
from first_deliveries
left join user_agents
    on first_deliveries.user_agent = user_agents.user_agent
