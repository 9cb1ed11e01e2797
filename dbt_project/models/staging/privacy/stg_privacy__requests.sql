-- One row per privacy request. An erasure keeps the person out of every audience from requested_at on.
select
    request_id,
    email,
    request_type,
    request_type = 'erasure' as is_erasure,
    requested_at
from {{ ref('base_privacy__requests') }}
where
    quarantine_reason is null
    and not is_superseded
