-- The identity graph's edges: two identifiers seen together on one clean record. Identifiers are nodes
-- `<identifier_type>:<identifier>`; an identifier seen alone gets a self-edge so that it still becomes a
-- person. Bots are not people and never enter the graph. Only evidence that existed at the end of the
-- as-of date (stg_data_clock.as_of_date, var `as_of`) counts: CRM records and orders in the version
-- current then, events and requests that happened by then. So a graph built as of a past date equals the
-- graph of the raw data cut at that date, and the marts keyed on it can be computed as of any date.
--
-- Incremental, append only: the edges of web and ESP events only ever accumulate, so a build reads only the
-- events loaded into stg_web__events / stg_esp__events since the last one, and the edges of records
-- (int_identity_record_edges: CRM, orders, consent, privacy) written there since the last one. Each build
-- appends the edges it does not hold yet; the pre-hook delete_gone_record_edges first deletes the record
-- edges that have gone. When an event edge it holds may no longer be evidence (a replaced event, a change
-- of var as_of), the pre-hook reset_stale_identity_edges empties the table, and the build then writes
-- every edge, as a full refresh does. So the table always equals a full refresh, loaded_at and
-- built_as_of_date aside (tests/dbt/test_incremental_events.py). int_identity_components follows the new
-- edges through loaded_at and the gone ones through its record_edge_count.
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=["{{ reset_stale_identity_edges() }}", "{{ delete_gone_record_edges() }}"],
    )
}}

-- The pre-hook (reset_stale_identity_edges) also reads the base event models:
-- depends_on: {{ ref('base_web__events') }}
-- depends_on: {{ ref('base_esp__events') }}

{%- set previous_build = identity_edges_build_state() %}
{#- Events loaded after the previous build (its latest loaded_at, a constant), unless the table is empty or the
    pre-hook empties it: then every event. #}
{%- set reads_events_since = previous_build.loaded_at is not none and not previous_build.reset %}
{%- set web_events_since = 'web.loaded_at > ' ~ previous_build.loaded_at if reads_events_since else '1 = 1' %}
{%- set esp_events_since = 'esp.loaded_at > ' ~ previous_build.loaded_at if reads_events_since else '1 = 1' %}
{#- Likewise the record edges int_identity_record_edges wrote since: it rewrites every edge of a key it
    recomputes, so an edge it wrote before is held here already (or was deleted by the pre-hook, being gone). #}
{%- set record_edges_since = 'loaded_at > ' ~ previous_build.loaded_at if reads_events_since else '1 = 1' %}

with clock as (

    select as_of_date from {{ ref('stg_data_clock') }}

),

web_events_as_of as (

    select
        web.anonymous_id,
        web.user_id
    from {{ ref('stg_web__events') }} as web
    cross join clock
    where
        web.event_at < {{ as_of_end_at('clock.as_of_date') }}
        and not web.is_bot
        and {{ web_events_since }}

),

esp_events_as_of as (

    select esp.email
    from {{ ref('stg_esp__events') }} as esp
    cross join clock
    where
        esp.event_at < {{ as_of_end_at('clock.as_of_date') }}
        and {{ esp_events_since }}

),

web_logins as (

    -- Any event carrying both ids ties the device to the account: login and signup events, and every
    -- event of a logged-in session.
    select distinct
        'anonymous_id' as left_type,
        anonymous_id as left_identifier,
        'shop_customer_id' as right_type,
        user_id as right_identifier,
        'web_login' as matched_by
    from web_events_as_of
    where user_id is not null

),

anonymous_devices as (

    select distinct
        'anonymous_id' as left_type,
        anonymous_id as left_identifier,
        'anonymous_id' as right_type,
        anonymous_id as right_identifier,
        'anonymous_visit' as matched_by
    from web_events_as_of
    where user_id is null

),

esp_contacts as (

    select distinct
        'email' as left_type,
        email as left_identifier,
        'email' as right_type,
        email as right_identifier,
        'esp_contact' as matched_by
    from esp_events_as_of

),

event_edges as (

    select * from web_logins
    union all
    select * from anonymous_devices
    union all
    select * from esp_contacts

),

all_edges as (

    -- Every part is distinct and has its own matched_by, so the union is too: no final distinct (a hash
    -- of every edge with its long identifiers, among the dearest steps of the model).
    select
        {{ identity_edge_columns() }}
    from event_edges

    union all

    select
        left_node,
        right_node,
        matched_by
    from {{ ref('int_identity_record_edges') }}
    where {{ record_edges_since }}

)

select
    all_edges.left_node,
    all_edges.right_node,
    all_edges.matched_by,
    clock.as_of_date as built_as_of_date,
    {{ this_run_loaded_at() }} as loaded_at
from all_edges
cross join clock
{%- if is_incremental() %}
    where not exists (
        select 1
        from {{ this }} as held_edges
        where
            held_edges.left_node = all_edges.left_node
            and held_edges.right_node = all_edges.right_node
            and held_edges.matched_by = all_edges.matched_by
    )
{%- endif %}
