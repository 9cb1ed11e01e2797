-- Every raw CRM record version, parsed and repaired where possible (names, countries, birth dates), with
-- its quarantine reason and whether a later version supersedes it.

{{ config(materialized='table') }}

{%- set raw_columns = ['customer_id', 'email', 'first_name', 'last_name', 'phone', 'birth_date', 'gender',
                       'country', 'city', 'postal_code', 'created_at', 'updated_at'] %}

-- Every row is ranked in one window over a single read of the raw files, as base_shop__orders does: most
-- customer_ids repeat (a record is delivered again with each update: 69% of the rows at a million
-- customers), so splitting off the rows of unrepeated keys first (repeated_key_digests, as the event models
-- do) read and hashed every row twice more to spare the window a third of them: 9.4-10.0 CPU-s against
-- 6.8-7.9 for the one window, with the same rows.
with source_rows as (

    select * from {{ source('crm', 'customers') }}

),

country_aliases as (

    select * from {{ ref('country_aliases') }}

),

parsed as (

    select
        {{ raw_row_key(['customer_id', 'updated_at']) }} as raw_row_key,
        {{ row_fingerprint(raw_columns) }} as row_fingerprint,
        _source_file as source_file,
        nullif({{ trimmed('customer_id') }}, '') as customer_id,
        {{ normalize_email('email') }} as email,
        {{ proper_case('first_name') }} as first_name,
        {{ proper_case('last_name') }} as last_name,
        nullif({{ trimmed('phone') }}, '') as phone,
        nullif({{ trimmed('birth_date') }}, '') as raw_birth_date,
        {{ safe_cast(trimmed('birth_date'), 'date') }} as birth_date,
        nullif(lower({{ trimmed('gender') }}), '') as gender,
        nullif(lower({{ trimmed('country') }}), '') as raw_country,
        {{ proper_case('city') }} as city,
        nullif(upper({{ trimmed('postal_code') }}), '') as postal_code,
        {{ to_utc_timestamp('created_at') }} as created_at,
        {{ to_utc_timestamp('updated_at') }} as updated_at,
        -- The text as delivered, kept until the quarantine verdict: only rejected rows carry it on.
        {{ raw_columns_as(raw_columns) }}
    from source_rows

),

classified as (

    select
        parsed.*,
        country_aliases.country_code,
        case
            when parsed.customer_id is null then 'missing_customer_id'
            when parsed.updated_at is null then 'unparseable_timestamp'
            -- A record whose email is unusable cannot be matched or emailed; an earlier clean version of
            -- the same record, if any, takes its place.
            when parsed.email is not null and not {{ is_valid_email('parsed.email') }} then 'invalid_email'
        end as quarantine_reason
    from parsed
    left join country_aliases
        on parsed.raw_country = country_aliases.alias

),

checked as (

    -- The delivered text survives only for quarantined rows, so the rows ranked below are narrow.
    select
        raw_row_key,
        {{ quarantined_raw_values(raw_columns) }} as raw_values,
        row_fingerprint,
        source_file,
        customer_id,
        email,
        first_name,
        last_name,
        phone,
        raw_birth_date,
        birth_date,
        gender,
        raw_country,
        city,
        postal_code,
        created_at,
        updated_at,
        country_code,
        quarantine_reason
    from classified

),

-- Each clean row against the next clean row of its record, in the order (updated_at, row_fingerprint): the
-- latest version, with the highest fingerprint among its verbatim re-deliveries, comes last. One window
-- gives what base_ models call is_superseded (a later row exists) and what stg_crm__customer_versions needs
-- (is_repeated_delivery, next_version_at), so that model is a projection that is cheap to rebuild when the
-- data clock moves.
versioned as (

    select
        checked.*,
        case when checked.quarantine_reason is null then lead(checked.updated_at) over (
            partition by checked.quarantine_reason is null, checked.customer_id
            order by checked.updated_at, checked.row_fingerprint
        ) end as next_row_updated_at
    from checked

)

select
    raw_row_key,
    raw_values,
    row_fingerprint,
    source_file,
    customer_id,
    email,
    first_name,
    last_name,
    phone,
    raw_birth_date,
    birth_date,
    gender,
    raw_country,
    city,
    postal_code,
    created_at,
    updated_at,
    country_code,
    quarantine_reason,
    next_row_updated_at is not null as is_superseded,
    coalesce(next_row_updated_at = updated_at, false) as is_repeated_delivery,
    case when next_row_updated_at > updated_at then next_row_updated_at end as next_version_at
from versioned
