-- One row per person whose latest email consent change received is an opt-out, over every change of
-- every address of theirs, whatever its timestamp: what customer_audience_status needs to honour an opt-out
-- when it arrives. customer_360 reads consent as of its as-of date and is rebuilt once a day; the clock
-- holds back a change stamped at or after its end as future_dated. An opt-out exported later than the
-- shop's latest order would otherwise leave the person in esp_audience until customer_360 caught up.
-- No as-of cut here on purpose: the gate must agree with customer_360 as it was built, also when the clock
-- has moved on since (the 15-minute refresh rebuilds the gate, not customer_360), and the latest change of
-- all is the person's state now.

-- Privacy errs one way only: a future-dated opt-out counts (a broken device clock must not delay it), a
-- future-dated opt-in does not (it stays held back, as in customer_360), and on a timestamp tie the
-- opt-out wins.
with received_changes as (

    select
        email,
        status,
        event_at
    from {{ ref('base_consent__events') }}
    where
        channel = 'email'
        and (
            quarantine_reason is null
            or (quarantine_reason = 'future_dated' and status = 'opted_out')
        )

),

person_changes_ranked as (

    select
        person_emails.person_id,
        received_changes.status,
        received_changes.event_at,
        row_number() over (
            partition by person_emails.person_id
            order by
                received_changes.event_at desc,
                case when received_changes.status = 'opted_out' then 0 else 1 end
        ) as recency_rank
    from received_changes
    inner join {{ ref('int_identity_map') }} as person_emails
        on
            person_emails.identifier_type = 'email'
            and received_changes.email = person_emails.identifier

)

select
    person_id,
    event_at as opted_out_at
from person_changes_ranked
where recency_rank = 1 and status = 'opted_out'
