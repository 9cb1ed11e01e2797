-- One row per person: marketing sends in the frequency-cap window and whether the person is held back.
-- A marketing send is an ESP `sent` event with a campaign_id to any of the person's emails; the window
-- is the var frequency_cap_days whole days ending with the as-of date. At var frequency_cap_sends or more
-- sends the person is capped and left out of esp_audience.
with persons as (

    select person_id from {{ ref('persons') }}

),

clock as (

    select
        {{ as_of_window_start_at('as_of_date', var('frequency_cap_days', 7) | int) }} as window_start_at,
        {{ as_of_end_at('as_of_date') }} as as_of_end_at
    from {{ ref('stg_data_clock') }}

),

person_emails as (

    select
        identifier as email,
        person_id
    from {{ ref('int_identity_map') }}
    where identifier_type = 'email'

),

recent_sends as (

    select
        person_emails.person_id,
        count(*) as marketing_sends
    from {{ ref('stg_esp__events') }} as esp
    inner join person_emails
        on esp.email = person_emails.email
    cross join clock
    where
        esp.event_type = 'sent'
        and esp.campaign_id is not null
        and esp.event_at >= clock.window_start_at
        and esp.event_at < clock.as_of_end_at
    group by person_emails.person_id

)

select
    persons.person_id,
    cast(coalesce(recent_sends.marketing_sends, 0) as {{ dbt.type_bigint() }}) as marketing_sends_in_cap_window,
    coalesce(recent_sends.marketing_sends, 0) >= {{ var('frequency_cap_sends', 3) | int }} as is_frequency_capped
from persons
left join recent_sends
    on persons.person_id = recent_sends.person_id
