-- One row per ESP event (duplicate webhook deliveries collapsed). Machine opens (Apple Mail Privacy
-- Protection, image proxies, link scanners) are flagged so that open rates count people, not proxies.
with first_deliveries as (

    select * from {{ ref('base_esp__events') }}
    where
        quarantine_reason is null
        and not is_superseded

)

select
    event_id,
    email,
    campaign_id,
    event_type,
    case when event_type = 'bounce' then coalesce(bounce_type, 'soft') end as bounce_type,
    url,
    user_agent,
    event_type = 'open' and {{ is_machine_open_user_agent('user_agent') }} as is_machine_open,
    event_at
from first_deliveries
