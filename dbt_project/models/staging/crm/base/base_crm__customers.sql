-- Every raw CRM record version, parsed and repaired where possible (names, countries, birth dates), with
-- its quarantine reason and whether a later version supersedes it.

{{ config(materialized='table') }}

with source_rows as (

    select * from {{ source('crm', 'customers') }}

),

country_aliases as (

    select * from {{ ref('country_aliases') }}

),

parsed as (

    select
        {{ raw_row_key(['customer_id', 'updated_at']) }} as raw_row_key,
        {{ raw_values(['customer_id', 'email', 'first_name', 'last_name', 'phone', 'birth_date', 'gender',
                       'country', 'city', 'postal_code', 'created_at', 'updated_at']) }} as raw_values,
        {{ row_fingerprint(['customer_id', 'email', 'first_name', 'last_name', 'phone', 'birth_date', 'gender',
                       'country', 'city', 'postal_code', 'created_at', 'updated_at']) }} as row_fingerprint,
        _source_file as source_file,
        nullif(trim(customer_id), '') as customer_id,
        {{ normalize_email('email') }} as email,
        {{ proper_case('first_name') }} as first_name,
        {{ proper_case('last_name') }} as last_name,
        nullif(trim(phone), '') as phone,
        nullif(trim(birth_date), '') as raw_birth_date,
        {{ safe_cast('trim(birth_date)', 'date') }} as birth_date,
        nullif(lower(trim(gender)), '') as gender,
        nullif(lower(trim(country)), '') as raw_country,
        {{ proper_case('city') }} as city,
        nullif(upper(trim(postal_code)), '') as postal_code,
        {{ to_utc_timestamp('created_at') }} as created_at,
        {{ to_utc_timestamp('updated_at') }} as updated_at
    from source_rows

),

checked as (

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

versioned as (

    select
        checked.*,
        {{ is_superseded(
            'checked', ['customer_id'], ['checked.updated_at desc', 'checked.row_fingerprint desc']
        ) }} as is_superseded
    from checked

)

select * from versioned
