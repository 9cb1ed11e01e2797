-- Every raw consent change, parsed and checked by the rules that do not depend on the data clock, with
-- whether it repeats a change already seen. base_consent__events adds the clock's rule (future_dated) in a
-- view: the clock moves with every landing file, and this table, which does the parsing and ranking, is
-- then not rebuilt.

-- The ranking needs no clock: rows that repeat a change share its event_at, so the clock quarantines all of
-- them or none, and the rows ranked together here are exactly those ranked together once it has.
{{ config(materialized='table') }}

with source_rows as (

    select * from {{ source('consent', 'events') }}

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
        end as row_quarantine_reason
    from parsed

)

select
    raw_row_key,
    raw_values,
    row_fingerprint,
    source_file,
    email,
    customer_id,
    channel,
    status,
    consent_source,
    event_at,
    row_quarantine_reason,
    row_quarantine_reason is null and row_number() over (
        partition by row_quarantine_reason is null, email, channel, event_at, status
        order by row_fingerprint asc
    ) > 1 as is_repeated_change
from checked
