-- One row per person: segment, tiers, and whether the person may be emailed now, with the first reason
-- when not. The audience gate, in order: no_email; opted_out, as of customer_360's date or received since
-- (int_email_opt_outs_received: an opt-out takes effect when it arrives, and ranks before the other reasons
-- so that esp_opt_outs unsubscribes the person); customer_360's other reasons (erased, hard_bounced,
-- no_consent_record); an erasure request customer_360 does not see as of its date (esp_erasures); then the
-- control group, then frequency capping. esp_audience holds exactly the people with is_in_audience.
with customers as (

    select
        person_id,
        as_of_date,
        can_email,
        cannot_email_reason,
        is_erased,
        is_hard_bounced
    from {{ ref('customer_360') }}

),

segments as (

    select * from {{ ref('customer_segments') }}

),

score_tiers as (

    select * from {{ ref('customer_score_tiers') }}

),

control_group as (

    select * from {{ ref('customer_control_group') }}

),

frequency_caps as (

    select * from {{ ref('customer_frequency_caps') }}

),

erased_people as (

    select distinct person_id
    from {{ ref('esp_erasures') }}
    where person_id is not null

),

opted_out_on_arrival as (

    select person_id from {{ ref('int_email_opt_outs_received') }}

),

gated as (

    select
        customers.person_id,
        customers.as_of_date,
        segments.segment,
        score_tiers.ltv_tier,
        score_tiers.churn_band,
        customers.can_email,
        control_group.is_control,
        frequency_caps.is_frequency_capped,
        case
            when customers.cannot_email_reason = 'no_email' then 'no_email'
            when customers.cannot_email_reason = 'opted_out' then 'opted_out'
            when opted_out_on_arrival.person_id is not null then 'opted_out'
            when not customers.can_email then customers.cannot_email_reason
            -- customer_360 already gives these reasons; kept so the gate never depends on rule order there.
            when customers.is_erased then 'erased'
            -- An erasure is honoured when it arrives, also when it is later than the as-of date.
            when erased_people.person_id is not null then 'erased'
            when customers.is_hard_bounced then 'hard_bounced'
            when control_group.is_control then 'control_group'
            when frequency_caps.is_frequency_capped then 'frequency_capped'
        end as audience_exclusion_reason
    from customers
    inner join segments
        on customers.person_id = segments.person_id
    inner join score_tiers
        on customers.person_id = score_tiers.person_id
    inner join control_group
        on customers.person_id = control_group.person_id
    inner join frequency_caps
        on customers.person_id = frequency_caps.person_id
    left join erased_people
        on customers.person_id = erased_people.person_id
    left join opted_out_on_arrival
        on customers.person_id = opted_out_on_arrival.person_id

)

select
    person_id,
    as_of_date,
    segment,
    ltv_tier,
    churn_band,
    can_email,
    is_control,
    is_frequency_capped,
    audience_exclusion_reason,
    audience_exclusion_reason is null as is_in_audience
from gated
