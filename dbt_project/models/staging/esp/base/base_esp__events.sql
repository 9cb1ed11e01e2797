-- Every raw ESP webhook delivery, parsed, with its quarantine reason, whether it repeats an event_id
-- already seen, and whether it is an open fetched by a machine.
{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

{%- set raw_columns = ['event_id', 'email', 'campaign_id', 'event_type', 'bounce_type', 'url', 'user_agent',
                       'event_at'] %}

{%- set ranked_columns = ['raw_row_key', 'raw_values', 'row_fingerprint', 'source_file', 'event_id', 'email',
                          'campaign_id', 'event_type', 'bounce_type', 'url', 'user_agent', 'is_machine_open',
                          'event_at', 'quarantine_reason'] %}

-- Incremental by landing file, as base_web__events: a run parses only the files it has not loaded and ranks
-- their events again with the deliveries of the same event_ids it already holds, and with the events held
-- as future_dated that the clock has caught up with, read back from this model; the merge on event_id
-- replaces them, so an incremental run equals a full refresh. Landing files are immutable: after editing
-- one in place, run with --full-refresh.
-- loaded_at (the run that wrote the row) limits the model's data tests to the rows a run rewrote, and
-- tells downstream models which rows changed.
-- The rows are read three times (the repeated event_ids, then the rows with and without one), and on a
-- full build each read goes back to the raw files (not_materialized): held in memory, the rows were as
-- wide as the raw table and spilled to disk at millions of events. An increment is small: held once.
with source_rows as {{ not_materialized() if not is_incremental() }} (

    select * from {{ source('esp', 'events') }}
    {%- if is_incremental() %}
        where {{ unloaded_landing_files(source('esp', 'events')) }}
    {%- endif %}

),

clock as (

    select * from {{ ref('stg_data_clock') }}

),

user_agents as (

    -- Each distinct user agent is matched against the machine-open pattern once: agents are far fewer than
    -- events, and the pattern match per event was the dearest expression of the event models. Computed
    -- here, once per delivery, rather than in stg_esp__events, a view over this model read by several models.
    select
        user_agent,
        {{ is_machine_open_user_agent('user_agent') }} as is_machine_open_agent
    from (select distinct source_rows.user_agent from source_rows) as delivered_agents

),

repeated_event_ids as (

    {{ repeated_key_digests('source_rows', "nullif(" ~ trimmed('event_id') ~ ", '')") }}

),

tagged_rows as {{ not_materialized() }} (

    {{ tagged_by_repeated_key('source_rows', 'repeated_event_ids', 'event_id') }}

),

parsed as {{ not_materialized() }} (

    select
        {{ row_fingerprint(raw_columns) }} as row_fingerprint,
        _source_file as source_file,
        nullif({{ trimmed('event_id') }}, '') as event_id,
        {{ normalize_email('email') }} as email,
        nullif({{ trimmed('campaign_id') }}, '') as campaign_id,
        lower({{ trimmed('event_type') }}) as event_type,
        nullif(lower({{ trimmed('bounce_type') }}), '') as bounce_type,
        nullif({{ trimmed('url') }}, '') as url,
        user_agent,
        {{ to_utc_timestamp('event_at') }} as event_at,
        -- The text as delivered, kept until the quarantine verdict: only rejected rows carry it on.
        {{ raw_columns_as(raw_columns) }},
        has_repeated_key
    from tagged_rows

),

classified as {{ not_materialized() }} (

    select
        parsed.*,
        case
            when parsed.event_id is null then 'missing_key'
            -- ESP events are known only by their email.
            when parsed.email is null or not {{ is_valid_email('parsed.email') }} then 'invalid_email'
            when parsed.event_at is null then 'unparseable_timestamp'
            when parsed.event_type is null or parsed.event_type not in (
                'sent', 'delivered', 'open', 'click', 'bounce', 'unsubscribe', 'spam_complaint'
            ) then 'unknown_event_type'
            when parsed.event_at >= clock.valid_until_at then 'future_dated'
        end as quarantine_reason
    from parsed
    cross join clock

),

checked as {{ not_materialized() }} (

    -- The delivered text survives only for quarantined rows, so the rows ranked below are narrow.
    select
        -- The delivered event_id only where event_id does not give it back (see stored_raw_row_key).
        {{ stored_raw_row_key('classified.raw__event_id', 'classified.event_id') }} as raw_row_key,
        {{ quarantined_raw_values(raw_columns) }} as raw_values,
        classified.row_fingerprint,
        classified.source_file,
        classified.event_id,
        classified.email,
        classified.campaign_id,
        classified.event_type,
        classified.bounce_type,
        classified.url,
        classified.user_agent,
        -- A missing user agent is not a machine (no match), as is_machine_open_user_agent says.
        coalesce(classified.event_type = 'open', false) and coalesce(user_agents.is_machine_open_agent, false)
            as is_machine_open,
        classified.event_at,
        classified.quarantine_reason,
        classified.has_repeated_key
    from classified
    left join user_agents
        on classified.user_agent = user_agents.user_agent

),

{% if is_incremental() %}
    reranked as (

        {{ new_and_released_events('checked', ranked_columns) }}

    ),

    versioned as (

        select
            reranked.*,
            {{ is_superseded('reranked', ['event_id'], ['reranked.row_fingerprint asc']) }} as is_superseded
        from reranked

    )
{% else %}
    versioned as (

        {{ with_repeated_keys_ranked('checked', ['event_id'], ['checked.row_fingerprint asc']) }}

    )
{% endif %}

select
    raw_row_key,
    raw_values,
    row_fingerprint,
    source_file,
    event_id,
    email,
    campaign_id,
    event_type,
    bounce_type,
    url,
    user_agent,
    is_machine_open,
    event_at,
    quarantine_reason,
    is_superseded,
    {{ this_run_loaded_at() }} as loaded_at
from versioned
