-- Every raw privacy request, parsed, with its quarantine reason and whether it repeats a request_id.

{{ config(materialized='table') }}

with source_rows as (

    select * from {{ source('privacy', 'requests') }}

),

parsed as (

    select
        {{ raw_row_key(['request_id']) }} as raw_row_key,
        {{ raw_values(['request_id', 'email', 'request_type', 'requested_at']) }} as raw_values,
        {{ row_fingerprint(['request_id', 'email', 'request_type', 'requested_at']) }} as row_fingerprint,
        _source_file as source_file,
        nullif({{ trimmed('request_id') }}, '') as request_id,
        {{ normalize_email('email') }} as email,
        lower({{ trimmed('request_type') }}) as request_type,
        {{ to_utc_timestamp('requested_at') }} as requested_at
    from source_rows

),

checked as (

    select
        parsed.*,
        case
            when parsed.request_id is null then 'missing_key'
            when parsed.email is null or not {{ is_valid_email('parsed.email') }} then 'invalid_email'
            when parsed.requested_at is null then 'unparseable_timestamp'
            when parsed.request_type is null or parsed.request_type not in ('erasure', 'access')
                then 'unknown_request_type'
        end as quarantine_reason
    from parsed

),

versioned as (

    select
        checked.*,
        {{ is_superseded(
            'checked', ['request_id'], ['checked.requested_at', 'checked.row_fingerprint']
        ) }} as is_superseded
    from checked

)

select * from versioned
