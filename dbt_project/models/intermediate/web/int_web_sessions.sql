-- Web sessions: a device's human events split after var('session_timeout_minutes') (default 30) of
-- inactivity, attributed to the person behind the device.
-- Incremental by device: an incremental build recomputes every session of each device (anonymous_id) that
-- has an event loaded into stg_web__events since this model's last build (a new event, a late one that
-- may fall inside or between earlier sessions, within the timeout or not, or a re-delivered event), and of
-- each device whose person in int_identity_map changed (an identity merge re-stamps its sessions; only the
-- devices the map rewrote since this model's last build are compared, unless the map was rebuilt). A
-- device's sessions depend on nothing but its own events and its person, so recomputing all of them for
-- exactly those devices gives what a full refresh gives (tests/dbt/test_incremental_events.py); every
-- other device keeps its rows. Changing var session_timeout_minutes needs --full-refresh.
{{
    config(
        materialized='incremental',
        unique_key='anonymous_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

{%- set timeout_minutes = var('session_timeout_minutes', 30) %}

with devices as (

    select
        identifier as anonymous_id,
        person_id,
        loaded_at
    from {{ ref('int_identity_map') }}
    where identifier_type = 'anonymous_id'

),

{% if is_incremental() %}
    changed_devices as (

        -- The last build's time is written in as a constant (loaded_after_this): the events table is then
        -- read only in its blocks of newer rows.
        select web.anonymous_id
        from {{ ref('stg_web__events') }} as web
        where {{ loaded_after_this('web.loaded_at') }}

        union

        -- Re-stamped: devices whose person is not the one their sessions carry (merged, split or gone).
        {%- if identity_map_rebuilt_since_sessions() %}
            -- int_identity_map was rebuilt from scratch: any device may have changed or gone.
            select sessions.anonymous_id
            from {{ this }} as sessions
            left join devices
                on sessions.anonymous_id = devices.anonymous_id
            where sessions.person_id is distinct from devices.person_id
        {%- else %}
            -- Only the devices int_identity_map rewrote since then can have another person; none has gone
            -- (an anonymous_id only leaves the map when it is rebuilt from scratch).
            select sessions.anonymous_id
            from {{ this }} as sessions
            inner join devices
                on sessions.anonymous_id = devices.anonymous_id
            where
                {{ loaded_after_this('devices.loaded_at') }}
                and sessions.person_id is distinct from devices.person_id
        {%- endif %}

    ),
{% endif %}

human_events as (

    select
        anonymous_id,
        event_type,
        event_at
    from {{ ref('stg_web__events') }}
    where
        not is_bot
        {%- if is_incremental() %}
            and anonymous_id in (select changed_devices.anonymous_id from changed_devices)
        {%- endif %}

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
    sessions.has_login,
    {{ this_run_loaded_at() }} as loaded_at
from sessions
left join devices
    on sessions.anonymous_id = devices.anonymous_id
