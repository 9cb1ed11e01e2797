-- One row per person who opted out of email after the as-of date and has not opted in again since: the
-- opt-outs customer_360 cannot see yet. customer_360 reads consent as of stg_data_clock.as_of_date, and the
-- clock holds back a change stamped at or after its end as future_dated; an opt-out exported later than the
-- shop's latest order would otherwise leave the person in esp_audience until the clock caught up. The
-- audience gate (customer_audience_status) honours these opt-outs on arrival, as it does erasures.

-- Privacy errs one way only: a future-dated opt-out counts now (a broken device clock must not delay it),
-- a future-dated opt-in does not (it stays held back, as in customer_360), and on a timestamp tie the
-- opt-out wins.
with clock as (

    select * from {{ ref('stg_data_clock') }}

),

changes_after_as_of as (

    select
        consent_events.email,
        consent_events.status,
        consent_events.event_at
    from {{ ref('base_consent__events') }} as consent_events
    cross join clock
    where
        consent_events.channel = 'email'
        and consent_events.event_at >= {{ as_of_end_at('clock.as_of_date') }}
        and (
            consent_events.quarantine_reason is null
            or (consent_events.quarantine_reason = 'future_dated' and consent_events.status = 'opted_out')
        )

),

person_changes_ranked as (

    select
        person_emails.person_id,
        changes_after_as_of.status,
        changes_after_as_of.event_at,
        row_number() over (
            partition by person_emails.person_id
            order by
                changes_after_as_of.event_at desc,
                case when changes_after_as_of.status = 'opted_out' then 0 else 1 end
        ) as recency_rank
    from changes_after_as_of
    inner join {{ ref('int_identity_map') }} as person_emails
        on
            person_emails.identifier_type = 'email'
            and changes_after_as_of.email = person_emails.identifier

)

select
    person_id,
    event_at as opted_out_at
from person_changes_ranked
where recency_rank = 1 and status = 'opted_out'
