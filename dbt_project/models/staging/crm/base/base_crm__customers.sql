-- Every raw CRM record version, parsed and repaired where possible (names, countries, birth dates), with
-- its quarantine reason and whether a later version supersedes it.

{{ config(materialized='table') }}

{%- set raw_columns = ['customer_id', 'email', 'first_name', 'last_name', 'phone', 'birth_date', 'gender',
                       'country', 'city', 'postal_code', 'created_at', 'updated_at'] %}

-- The rows are read three times (the repeated keys, then the rows with and without one), each time from
-- the raw files (not_materialized): held in memory, the parsed rows were wider than the raw table.
with source_rows as {{ not_materialized() }} (

    select * from {{ source('crm', 'customers') }}

),

country_aliases as (

    select * from {{ ref('country_aliases') }}

),

repeated_customer_ids as (

    {{ repeated_key_digests('source_rows', "nullif(" ~ trimmed('customer_id') ~ ", '')") }}

),

tagged_rows as {{ not_materialized() }} (

    {{ tagged_by_repeated_key('source_rows', 'repeated_customer_ids', 'customer_id') }}

),

parsed as {{ not_materialized() }} (

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
        {{ raw_columns_as(raw_columns) }},
        has_repeated_key
    from tagged_rows

),

classified as {{ not_materialized() }} (

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

checked as {{ not_materialized() }} (

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
        quarantine_reason,
        has_repeated_key
    from classified

),

versioned as (

    {{ with_repeated_keys_ranked(
        'checked', ['customer_id'], ['checked.updated_at desc', 'checked.row_fingerprint desc']
    ) }}

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
    is_superseded
from versioned
