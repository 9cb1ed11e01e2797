-- One row per ESP event (duplicate webhook deliveries collapsed). Machine opens (Apple Mail Privacy
-- Protection, image proxies, link scanners) are flagged so that open rates count people, not proxies.
-- A table, not a view: sessions, the identity graph, the reconciliation and every data test read it, and a
-- view would redo the join and the user-agent matching over millions of events for each of them.
{{ config(materialized='table') }}

with first_deliveries as (

    select * from {{ ref('base_esp__events') }}
    where
        quarantine_reason is null
        and not is_superseded

),

user_agents as (

    -- Each distinct user agent is matched against the machine-open pattern once: agents are far fewer than
    -- events, and the pattern match per event was the dearest expression of the model.
    select
        user_agent,
        {{ is_machine_open_user_agent('user_agent') }} as is_machine_open_agent
    from (select distinct user_agent from {{ ref('base_esp__events') }}) as delivered_agents

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
    first_deliveries.event_at
from first_deliveries
left join user_agents
    on first_deliveries.user_agent = user_agents.user_agent
