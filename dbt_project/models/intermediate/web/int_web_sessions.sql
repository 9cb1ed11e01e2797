-- Web sessions: a device's human events split after var('session_timeout_minutes') (default 30) of
-- inactivity, attributed to the person behind the device.
{{ config(materialized='table') }}

{%- set timeout_minutes = var('session_timeout_minutes', 30) %}

with human_events as (

    select
        anonymous_id,
        event_type,
        event_at
    from {{ ref('stg_web__events') }}
    where not is_bot

),

gaps as (

    select
        *,
        lag(event_at) over (partition by anonymous_id order by event_at) as previous_event_at
    from human_events

),

session_starts as (

    select
        *,
        case
            when previous_event_at is null then 1
            when {{ dbt.datediff('previous_event_at', 'event_at', 'second') }} > {{ timeout_minutes * 60 }} then 1
            else 0
        end as is_session_start
    from gaps

),

numbered as (

    -- Events of a device at the same instant share a session whichever of them the lag above saw first: a
    -- session can only start at an instant more than the timeout after the previous one, and the range
    -- frame counts the starts of every peer of an instant. So no tie-break column has to be sorted on.
    select
        *,
        sum(is_session_start) over (
            partition by anonymous_id
            order by event_at
            range between unbounded preceding and current row
        ) as session_number
    from session_starts

),

sessions as (

    select
        anonymous_id,
        session_number,
        min(event_at) as started_at,
        max(event_at) as ended_at,
        count(*) as event_count,
        sum(case when event_type = 'page_view' then 1 else 0 end) as page_views,
        sum(case when event_type = 'product_view' then 1 else 0 end) as product_views,
        sum(case when event_type = 'add_to_cart' then 1 else 0 end) as add_to_carts,
        sum(case when event_type = 'checkout_started' then 1 else 0 end) as checkouts_started,
        sum(case when event_type = 'search' then 1 else 0 end) as searches,
        max(case when event_type in ('login', 'signup') then 1 else 0 end) = 1 as has_login
    from numbered
    group by anonymous_id, session_number

),

devices as (

    select
        identifier as anonymous_id,
        person_id
    from {{ ref('int_identity_map') }}
    where identifier_type = 'anonymous_id'

)

select
    {{ surrogate_key(['sessions.anonymous_id', 'sessions.started_at']) }} as session_id,
    sessions.anonymous_id,
    devices.person_id,
    sessions.session_number,
    sessions.started_at,
    sessions.ended_at,
    {{ dbt.datediff('sessions.started_at', 'sessions.ended_at', 'second') }} as duration_seconds,
    sessions.event_count,
    sessions.page_views,
    sessions.product_views,
    sessions.add_to_carts,
    sessions.checkouts_started,
    sessions.searches,
    sessions.has_login
from sessions
left join devices
    on sessions.anonymous_id = devices.anonymous_id
