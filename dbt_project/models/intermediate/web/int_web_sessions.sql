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
{%- if timeout_minutes is not integer or timeout_minutes < 1 %}
    {{ exceptions.raise_compiler_error(
        "var session_timeout_minutes must be a whole number of minutes, at least 1; got " ~ timeout_minutes
    ) }}
{%- endif %}
{%- set timeout_seconds = timeout_minutes * 60 %}

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

device_windows as (

    -- A device's events within one window of the timeout's length are less than the timeout apart, so
    -- they are always in one session: the sessions are cut from these windows, not from every event. At
    -- a million customers the two sorts below then order 5.8M windows instead of 30M events; sorting
    -- events was most of the model's cost.
    select
        anonymous_id,
        {{ time_bucket('event_at', timeout_seconds) }} as window_number,
        min(event_at) as first_event_at,
        max(event_at) as last_event_at,
        count(*) as event_count,
        sum(case when event_type = 'page_view' then 1 else 0 end) as page_views,
        sum(case when event_type = 'product_view' then 1 else 0 end) as product_views,
        sum(case when event_type = 'add_to_cart' then 1 else 0 end) as add_to_carts,
        sum(case when event_type = 'checkout_started' then 1 else 0 end) as checkouts_started,
        sum(case when event_type = 'search' then 1 else 0 end) as searches,
        max(case when event_type in ('login', 'signup') then 1 else 0 end) as has_login
    from human_events
    group by anonymous_id, {{ time_bucket('event_at', timeout_seconds) }}

),

gaps as (

    -- The gap before a window's first event is the gap between two events in a row of the device's
    -- events: a window holds all of the device's events between its first and last.
    select
        *,
        lag(last_event_at) over (partition by anonymous_id order by window_number) as previous_event_at
    from device_windows

),

session_starts as (

    select
        *,
        case
            when previous_event_at is null then 1
            when {{ dbt.datediff('previous_event_at', 'first_event_at', 'second') }} > {{ timeout_seconds }} then 1
            else 0
        end as is_session_start
    from gaps

),

numbered as (

    -- Events at the same instant fall in the same window, so they share a session.
    select
        *,
        sum(is_session_start) over (
            partition by anonymous_id
            order by window_number
            rows between unbounded preceding and current row
        ) as session_number
    from session_starts

),

sessions as (

    select
        anonymous_id,
        session_number,
        min(first_event_at) as started_at,
        max(last_event_at) as ended_at,
        cast(sum(event_count) as {{ dbt.type_bigint() }}) as event_count,
        sum(page_views) as page_views,
        sum(product_views) as product_views,
        sum(add_to_carts) as add_to_carts,
        sum(checkouts_started) as checkouts_started,
        sum(searches) as searches,
        max(has_login) = 1 as has_login
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
