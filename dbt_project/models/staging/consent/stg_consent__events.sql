-- One row per consent change. When two changes for one email and channel share a timestamp, opted_out
-- sorts last in `change_sequence`, so the latest state is never a silent opt-in.
with clean_changes as (

    select * from {{ ref('base_consent__events') }}
    where
        quarantine_reason is null
        and not is_superseded

)

select
    {{ surrogate_key(['email', 'channel', 'event_at', 'status']) }} as consent_event_id,
    email,
    customer_id,
    channel,
    status,
    status = 'opted_in' as is_opted_in,
    consent_source,
    event_at,
    row_number() over (
        partition by email, channel
        order by event_at, case when status = 'opted_out' then 1 else 0 end, consent_source
    ) as change_sequence
from clean_changes
