-- The identity graph's edges from records that can change or be replaced: CRM records, orders (by version),
-- consent changes and privacy requests. int_identity_edges adds the edges of web and ESP events, which
-- only ever accumulate, compares these with the edges it holds, appends the new ones and deletes the gone
-- ones. Only evidence that existed at the end of the as-of date (stg_data_clock.as_of_date, var `as_of`)
-- counts: CRM records and orders in the version current then, consent changes and requests that happened
-- by then.
--
-- Incremental: a build recomputes the edges of the keys (shop or CRM customer id, email) that a record
-- changed since the previous build may carry, from every record of those keys, after the pre-hook
-- delete_recomputed_record_edges deleted the edges it held for them; every other edge stays (see
-- record_edges_build_state). So the table equals a full refresh, loaded_at and the built_ dates aside
-- (tests/dbt/test_incremental_events.py). On a day of new orders that is a few thousand keys instead of every
-- order version, CRM record and consent change, hashed and written again.
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ delete_recomputed_record_edges() }}",
    )
}}

-- The build state (record_edges_build_state) also reads which landing files were counted since:
-- depends_on: {{ ref('stg_landing_files') }}

{%- set build = record_edges_build_state() %}

with clock as (

    select
        as_of_date,
        latest_data_date
    from {{ ref('stg_data_clock') }}

),

{#- In an incremental build each source's records are first limited to the recomputed keys, computed once
    (materialized_hint: inlined, the planner joins the clock first and hashes every version, not the keys). #}
{%- set keyed = materialized_hint() if build.incremental else '' %}

crm_records as {{ keyed }} (

    select
        customer_id,
        email,
        valid_from_at,
        valid_to_at
    from {{ ref('stg_crm__customer_versions') }}
    where {{ recomputed_record_keys(build, 'crm_customer_ids', 'customer_id') }}

),

order_versions as {{ keyed }} (

    -- Account orders and guest orders apart, each limited by its own keys.
    select
        customer_id,
        email,
        created_at,
        valid_from_at,
        valid_to_at
    from {{ ref('stg_shop__order_versions') }}
    where
        customer_id is not null
        and {{ recomputed_record_keys(build, 'shop_customer_ids', 'customer_id') }}

    union all

    select
        customer_id,
        email,
        created_at,
        valid_from_at,
        valid_to_at
    from {{ ref('stg_shop__order_versions') }}
    where
        customer_id is null
        and {{ recomputed_record_keys(build, 'guest_emails', 'email') }}

),

consent_events as {{ keyed }} (

    select
        email,
        customer_id,
        event_at
    from {{ ref('stg_consent__events') }}
    where {{ recomputed_record_keys(build, 'consent_emails', 'email') }}

),

privacy_requests as {{ keyed }} (

    select
        email,
        requested_at
    from {{ ref('stg_privacy__requests') }}
    where {{ recomputed_record_keys(build, 'privacy_emails', 'email') }}

),

crm_records_as_of as (

    select versions.*
    from crm_records as versions
    cross join clock
    where {{ is_version_current_at('versions', 'clock.as_of_date') }}

),

shop_orders_as_of as (

    select versions.*
    from order_versions as versions
    cross join clock
    where
        versions.created_at < {{ as_of_end_at('clock.as_of_date') }}
        and {{ is_version_current_at('versions', 'clock.as_of_date') }}

),

consent_events_as_of as (

    select consent.*
    from consent_events as consent
    cross join clock
    where consent.event_at < {{ as_of_end_at('clock.as_of_date') }}

),

privacy_requests_as_of as (

    select requests.*
    from privacy_requests as requests
    cross join clock
    where requests.requested_at < {{ as_of_end_at('clock.as_of_date') }}

),

crm_record_emails as (

    select distinct
        'crm_customer_id' as left_type,
        customer_id as left_identifier,
        'email' as right_type,
        email as right_identifier,
        'crm_record_email' as matched_by
    from crm_records_as_of
    where email is not null

),

crm_records_without_email as (

    select distinct
        'crm_customer_id' as left_type,
        customer_id as left_identifier,
        'crm_customer_id' as right_type,
        customer_id as right_identifier,
        'crm_record' as matched_by
    from crm_records_as_of
    where email is null

),

shop_account_emails as (

    select distinct
        'shop_customer_id' as left_type,
        customer_id as left_identifier,
        'email' as right_type,
        email as right_identifier,
        'order_email' as matched_by
    from shop_orders_as_of
    where
        customer_id is not null
        and email is not null

),

shop_accounts_without_email as (

    select distinct
        'shop_customer_id' as left_type,
        customer_id as left_identifier,
        'shop_customer_id' as right_type,
        customer_id as right_identifier,
        'shop_account' as matched_by
    from shop_orders_as_of
    where
        customer_id is not null
        and email is null

),

guest_checkouts as (

    select distinct
        'email' as left_type,
        email as left_identifier,
        'email' as right_type,
        email as right_identifier,
        'guest_checkout' as matched_by
    from shop_orders_as_of
    where
        customer_id is null
        and email is not null

),

consent_records as (

    select distinct
        'crm_customer_id' as left_type,
        customer_id as left_identifier,
        'email' as right_type,
        email as right_identifier,
        'consent_customer_id' as matched_by
    from consent_events_as_of
    where customer_id is not null

    -- The two halves differ in matched_by, so they cannot share a row.
    union all

    select distinct
        'email' as left_type,
        email as left_identifier,
        'email' as right_type,
        email as right_identifier,
        'consent_email' as matched_by
    from consent_events_as_of
    where customer_id is null

),

privacy_requesters as (

    select distinct
        'email' as left_type,
        email as left_identifier,
        'email' as right_type,
        email as right_identifier,
        'privacy_request' as matched_by
    from privacy_requests_as_of

),

record_edges as (

    select * from crm_record_emails
    union all
    select * from crm_records_without_email
    union all
    select * from shop_account_emails
    union all
    select * from shop_accounts_without_email
    union all
    select * from guest_checkouts
    union all
    select * from consent_records
    union all
    select * from privacy_requesters

)

-- Every part above is distinct and has its own matched_by, so the union is too: no final distinct (a hash
-- of every edge with its long identifiers, among the dearest steps of the model). The identifiers are kept
-- besides the nodes for the pre-hook delete_recomputed_record_edges, which finds the edges of a recomputed
-- key by the key's own value, as the sources hold it.
select
    {{ identity_edge_columns() }},
    record_edges.left_identifier,
    record_edges.right_identifier,
    clock.as_of_date as built_as_of_date,
    clock.latest_data_date as built_latest_data_date,
    {{ this_run_loaded_at() }} as loaded_at
from record_edges
cross join clock
