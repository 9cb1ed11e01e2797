-- One row per (campaign, segment, experiment group): reach, engagement, conversions and revenue, so the
-- uplift of a campaign is the treatment row's conversion rate or revenue per person minus the control
-- row's. Treatment: people sent the campaign who are not in the control group, each converting with a
-- completed order within var campaign_attribution_days days of their send. Control: the control group's
-- people who may currently be emailed (customer_360.can_email), measured over the same number of days from
-- the campaign's first send. Segment and control membership are the current ones (customer_audience_status);
-- the membership history is in the customer_segment_history snapshot. Events and orders count up to the
-- end of the as-of date.
with clock as (

    select {{ as_of_end_at('as_of_date') }} as as_of_end_at
    from {{ ref('stg_data_clock') }}

),

person_emails as (

    select
        identifier as email,
        person_id
    from {{ ref('int_identity_map') }}
    where identifier_type = 'email'

),

status as (

    select
        person_id,
        segment,
        can_email,
        is_control
    from {{ ref('customer_audience_status') }}

),

campaign_events as (

    select
        person_emails.person_id,
        esp.campaign_id,
        esp.event_type,
        esp.is_machine_open,
        esp.event_at
    from {{ ref('stg_esp__events') }} as esp
    inner join person_emails
        on esp.email = person_emails.email
    cross join clock
    where
        esp.campaign_id is not null
        and esp.event_at < clock.as_of_end_at

),

recipient_events as (

    -- One row per (campaign, person sent it).
    select
        campaign_id,
        person_id,
        min(case when event_type = 'sent' then event_at end) as sent_at,
        sum(case when event_type = 'sent' then 1 else 0 end) as sends,
        sum(case when event_type = 'delivered' then 1 else 0 end) as deliveries,
        sum(case when event_type = 'open' then 1 else 0 end) as opens,
        sum(case when event_type = 'open' and not is_machine_open then 1 else 0 end) as human_opens,
        sum(case when event_type = 'click' then 1 else 0 end) as clicks
    from campaign_events
    group by campaign_id, person_id
    having sum(case when event_type = 'sent' then 1 else 0 end) > 0

),

campaigns as (

    select
        campaign_id,
        min(sent_at) as campaign_sent_at
    from recipient_events
    group by campaign_id

),

exposures as (

    select
        recipient_events.campaign_id,
        recipient_events.person_id,
        'treatment' as experiment_group,
        recipient_events.sent_at as window_start_at,
        recipient_events.sends,
        recipient_events.deliveries,
        recipient_events.opens,
        recipient_events.human_opens,
        recipient_events.clicks
    from recipient_events
    inner join status
        on recipient_events.person_id = status.person_id
    where not status.is_control

    union all

    select
        campaigns.campaign_id,
        status.person_id,
        'control' as experiment_group,
        campaigns.campaign_sent_at as window_start_at,
        0 as sends,
        0 as deliveries,
        0 as opens,
        0 as human_opens,
        0 as clicks
    from campaigns
    cross join status
    where status.is_control and status.can_email

),

person_orders as (

    {{ person_orders_as_of() }}

),

conversions as (

    select
        exposures.campaign_id,
        exposures.person_id,
        exposures.experiment_group,
        count(*) as orders,
        sum(person_orders.net_revenue_reporting) as revenue
    from exposures
    inner join person_orders
        on
            exposures.person_id = person_orders.person_id
            and person_orders.is_completed
            and exposures.window_start_at <= person_orders.ordered_at
            and {{ dbt.dateadd('day', var('campaign_attribution_days', 7) | int, 'exposures.window_start_at') }}
            > person_orders.ordered_at
    group by exposures.campaign_id, exposures.person_id, exposures.experiment_group

),

performance as (

    select
        exposures.campaign_id,
        status.segment,
        exposures.experiment_group,
        min(exposures.window_start_at) as campaign_sent_at,
        count(*) as persons,
        sum(exposures.sends) as sends,
        sum(exposures.deliveries) as deliveries,
        sum(exposures.opens) as opens,
        sum(exposures.human_opens) as human_opens,
        sum(exposures.clicks) as clicks,
        count(conversions.person_id) as converted_persons,
        coalesce(sum(conversions.orders), 0) as conversions,
        coalesce(sum(conversions.revenue), 0) as revenue
    from exposures
    inner join status
        on exposures.person_id = status.person_id
    left join conversions
        on
            exposures.campaign_id = conversions.campaign_id
            and exposures.person_id = conversions.person_id
            and exposures.experiment_group = conversions.experiment_group
    group by exposures.campaign_id, status.segment, exposures.experiment_group

)

select
    {{ surrogate_key(['campaign_id', 'segment', 'experiment_group']) }} as campaign_performance_key,
    campaign_id,
    segment,
    experiment_group,
    cast(campaign_sent_at as {{ dbt.type_timestamp() }}) as campaign_sent_at,
    cast(persons as {{ dbt.type_bigint() }}) as persons,
    cast(sends as {{ dbt.type_bigint() }}) as sends,
    cast(deliveries as {{ dbt.type_bigint() }}) as deliveries,
    cast(opens as {{ dbt.type_bigint() }}) as opens,
    cast(human_opens as {{ dbt.type_bigint() }}) as human_opens,
    cast(clicks as {{ dbt.type_bigint() }}) as clicks,
    cast(converted_persons as {{ dbt.type_bigint() }}) as converted_persons,
    cast(conversions as {{ dbt.type_bigint() }}) as conversions,
    cast(revenue as {{ dbt.type_numeric() }}) as revenue,
    cast(1.0 * converted_persons / persons as {{ dbt.type_numeric() }}) as conversion_rate,
    cast(revenue / persons as {{ dbt.type_numeric() }}) as revenue_per_person
from performance
