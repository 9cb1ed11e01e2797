{{ config(materialized="table") }}

-- The identity graph's edges: two identifiers seen together on one clean record. Identifiers are nodes
-- `<identifier_type>:<identifier>`; an identifier seen alone gets a self-edge so that it still becomes a
-- person. Bots are not people and never enter the graph. Only evidence that existed at the end of the
-- as-of date (stg_data_clock.as_of_date, var `as_of`) counts: CRM records and orders in the version
-- current then, events and requests that happened by then. So a graph built as of a past date equals the
-- graph of the raw data cut at that date, and the marts keyed on it can be computed as of any date.
with clock as (

    select as_of_date from {{ ref('stg_data_clock') }}

),

crm_records_as_of as (

    select versions.*
    from {{ ref('stg_crm__customer_versions') }} as versions
    cross join clock
    where {{ is_version_current_at('versions', 'clock.as_of_date') }}

),

shop_orders_as_of as (

    select versions.*
    from {{ ref('stg_shop__order_versions') }} as versions
    cross join clock
    where
        versions.created_at < {{ as_of_end_at('clock.as_of_date') }}
        and {{ is_version_current_at('versions', 'clock.as_of_date') }}

),

web_events_as_of as (

    select web.*
    from {{ ref('stg_web__events') }} as web
    cross join clock
    where web.event_at < {{ as_of_end_at('clock.as_of_date') }}

),

esp_events_as_of as (

    select esp.*
    from {{ ref('stg_esp__events') }} as esp
    cross join clock
    where esp.event_at < {{ as_of_end_at('clock.as_of_date') }}

),

consent_events_as_of as (

    select consent.*
    from {{ ref('stg_consent__events') }} as consent
    cross join clock
    where consent.event_at < {{ as_of_end_at('clock.as_of_date') }}

),

privacy_requests_as_of as (

    select requests.*
    from {{ ref('stg_privacy__requests') }} as requests
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
    where
        user_id is not null
        and not is_bot

),

anonymous_devices as (

    select distinct
        'anonymous_id' as left_type,
        anonymous_id as left_identifier,
        'anonymous_id' as right_type,
        anonymous_id as right_identifier,
        'anonymous_visit' as matched_by
    from web_events_as_of
    where
        user_id is null
        and not is_bot

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

all_edges as (

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
    select * from web_logins
    union all
    select * from anonymous_devices
    union all
    select * from esp_contacts
    union all
    select * from consent_records
    union all
    select * from privacy_requesters

)

-- Every part above is distinct and has its own matched_by, so the union is too: no final distinct (a hash
-- of every edge with its long identifiers, among the dearest steps of the model).
select
    {{ surrogate_key(['left_type', 'left_identifier', 'right_type', 'right_identifier', 'matched_by']) }}
        as identity_edge_id,
    left_type,
    left_identifier,
    left_type || ':' || left_identifier as left_node,
    right_type,
    right_identifier,
    right_type || ':' || right_identifier as right_node,
    matched_by
from all_edges
