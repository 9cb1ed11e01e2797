-- Every raw consent change, parsed, with its quarantine reason and whether it repeats a change already seen.

{{ config(materialized='table') }}

with source_rows as (

    select * from {{ source('consent', 'events') }}

),

clock as (

    select * from {{ ref('stg_data_clock') }}

),

parsed as (

    select
        {{ raw_row_key(['email', 'channel', 'event_at']) }} as raw_row_key,
        {{ raw_values(['email', 'customer_id', 'channel', 'status', 'source', 'event_at']) }} as raw_values,
        {{ row_fingerprint(['email', 'customer_id', 'channel', 'status', 'source', 'event_at']) }} as row_fingerprint,
        _source_file as source_file,
        {{ normalize_email('email') }} as email,
        nullif({{ trimmed('customer_id') }}, '') as customer_id,
        lower({{ trimmed('channel') }}) as channel,
        lower({{ trimmed('status') }}) as status,
        nullif(lower({{ trimmed('source') }}), '') as consent_source,
        {{ to_utc_timestamp('event_at') }} as event_at
    from source_rows

),

checked as (

    select
        parsed.*,
        case
            when parsed.email is null or not {{ is_valid_email('parsed.email') }} then 'invalid_email'
            when parsed.event_at is null then 'unparseable_timestamp'
            when parsed.channel is null or parsed.channel not in ('email', 'sms') then 'unknown_channel'
            when parsed.status is null or parsed.status not in ('opted_in', 'opted_out') then 'unknown_status'
            when parsed.event_at >= clock.valid_until_at then 'future_dated'
        end as quarantine_reason
    from parsed
    cross join clock

),

versioned as (

    select
        checked.*,
        {{ is_superseded(
            'checked', ['email', 'channel', 'event_at', 'status'], ['checked.row_fingerprint asc']
        ) }} as is_superseded
    from checked

)

select * from versioned
