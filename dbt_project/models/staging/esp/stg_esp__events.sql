-- One row per ESP event (duplicate webhook deliveries collapsed). Machine opens (Apple Mail Privacy
-- Protection, image proxies, link scanners) are flagged so that open rates count people, not proxies.
-- A view over base_esp__events, its clean first deliveries: base_ (incremental, merged by event_id) already
-- holds every column, and copying its millions of kept rows into a second table was among the dearest steps
-- of a build. A view is always current, so it needs no incremental logic of its own: loaded_at is base_'s,
-- which rewrites every delivery of each event_id a new landing file carries and each event held as
-- future_dated that the clock has caught up with, so downstream incremental models find the rows that changed
-- by it.
select
    event_id,
    email,
    campaign_id,
    event_type,
    case when event_type = 'bounce' then coalesce(bounce_type, 'soft') end as bounce_type,
    url,
    user_agent,
    is_machine_open,
    event_at,
    source_file,
    loaded_at
from {{ ref('base_esp__events') }}
where quarantine_reason is null and not is_superseded
