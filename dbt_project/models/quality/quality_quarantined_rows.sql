-- Every rejected raw row, from every source, with the reason and its raw values, so that it can be fixed
-- at the source. Nothing is dropped silently: see quality_source_reconciliation.

-- Incremental, equal to a full refresh (tests/dbt/test_incremental_events.py). A row's id depends only on
-- the quarantined rows of its source that share its raw_row_key (its occurrence among identical rows), so
-- a run rewrites whole raw_row_keys, merged on (source_name, raw_row_key):
--   - sources whose base model stamps the rows it writes (loaded_at): every raw_row_key of a base row
--     written since this model's last run (loaded_after_this), with all the quarantined rows of that key.
--     Those base models only add rows or rewrite them under the same raw_row_key, so a key no base run
--     touched keeps its rows; a row that turned clean (a future_dated event the clock caught up with, an
--     orphan line whose order arrived) was rewritten, and a pre-hook deletes its key before the run;
--   - the other sources (small tables and views rebuilt in full, the consent view reading the clock):
--     every row; a post-hook then deletes their keys that have no quarantined row left.
-- Every read of a base model's raw_row_key goes through read_raw_row_key with the model's cleaned key
-- column (the last item below, none where the model stores every key): the event models store the
-- delivered key only where their event_id does not give it back (stored_raw_row_key).
{%- set base_models = [
    ('crm_customers', 'base_crm__customers', false, none),
    ('shop_orders', 'base_shop__orders', true, none),
    ('shop_order_lines', 'base_shop__order_lines', true, none),
    ('products', 'base_shop__products', false, none),
    ('web_events', 'base_web__events', true, 'event_id'),
    ('esp_events', 'base_esp__events', true, 'event_id'),
    ('consent_events', 'base_consent__events', false, none),
    ('privacy_requests', 'base_privacy__requests', false, none),
] %}
{#- Keys the merge alone cannot remove, as it deletes only the keys of the rows it inserts:
    - before the run, every raw_row_key of a stamped source that its base model wrote since this model's
      last run (those with a quarantined row left are inserted again below);
    - after the merge, every raw_row_key of a source rebuilt in full that has no quarantined row left (its
      other keys were all rewritten, keeping the loaded_at of unchanged rows). -#}
{%- set written_key_deletes = [] %}
{%- set stale_key_deletes = [] %}
{%- for source_name, base_model, is_stamped, clean_key in base_models %}
    {%- if is_stamped %}
        {%- do written_key_deletes.append(
            "{% if is_incremental() %}delete from {{ this }} where source_name = '" ~ source_name ~ "' "
            ~ "and raw_row_key in (select " ~ read_raw_row_key(clean_key, 'written') ~ " "
            ~ "from {{ ref('" ~ base_model ~ "') }} as written where {{ loaded_after_this() }}){% endif %}"
        ) %}
    {%- else %}
        {%- do stale_key_deletes.append(
            "delete from {{ this }} where source_name = '" ~ source_name ~ "' and not exists ("
            ~ "select 1 from {{ ref('" ~ base_model ~ "') }} as base where base.quarantine_reason is not null "
            ~ "and " ~ read_raw_row_key(clean_key, 'base') ~ " = {{ this }}.raw_row_key)"
        ) %}
    {%- endif %}
{%- endfor %}

{{
    config(
        materialized='incremental',
        unique_key=['source_name', 'raw_row_key'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook=written_key_deletes,
        post_hook=stale_key_deletes,
    )
}}

{#- What makes two quarantined rows the same content, as a compact digest (row_fingerprint: on DuckDB one
    hash over the four columns, which spares concatenating each row's raw_values into a longer text to
    hash; 0.3-1.4 of 4.2-5.7 CPU-s at a million customers). -#}
{%- set content_hash = row_fingerprint(['source_name', 'raw_row_key', 'raw_values', 'quarantine_reason']) %}

with

{#- In an incremental build, the quarantined rows of each stamped source are first read on their own, as
    the few rows they are, and only then limited to the written keys (materialized_hint): inlined, DuckDB
    pushes the semi-join's keys into the scan of the base model, which then looks up the raw_row_key of
    every one of its rows (0.8 of 1.1 s CPU for the web events at a million customers). #}
{%- if is_incremental() %}
    {%- for source_name, base_model, is_stamped, clean_key in base_models if is_stamped %}
        quarantined_{{ source_name }} as {{ materialized_hint() }} (

            select
                {{ read_raw_row_key(clean_key) }} as raw_row_key,
                quarantine_reason,
                raw_values,
                source_file
            from {{ ref(base_model) }}
            where quarantine_reason is not null

        ),
    {%- endfor %}
{%- endif %}

quarantined as (
    {% for source_name, base_model, is_stamped, clean_key in base_models %}
        {#- quarantined_<source_name> has read the key back already. #}
        {%- set row_key = 'raw_row_key' if is_stamped and is_incremental() else read_raw_row_key(clean_key) %}
        select
            '{{ source_name }}' as source_name,
            {{ row_key }} as raw_row_key,
            quarantine_reason,
            raw_values,
            source_file
        {%- if is_stamped and is_incremental() %}
            from quarantined_{{ source_name }}
            where raw_row_key in (
                select {{ read_raw_row_key(clean_key, 'written') }} from {{ ref(base_model) }} as written
                where {{ loaded_after_this() }}
            )
        {%- else %}
            from {{ ref(base_model) }}
            where quarantine_reason is not null
        {%- endif %}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

repeated_contents as (

    -- Rows whose content hash another row shares: verbatim duplicates, and the rare rows whose different
    -- contents hash alike. A row outside them has content no other row has, so it is occurrence 1 without
    -- ranking; the exact window below ranks the few others, so a hash collision costs time, never ids.
    select {{ content_hash }} as content_hash
    from quarantined
    group by {{ content_hash }}
    having count(*) > 1

),

numbered as (

    select
        quarantined.*,
        1 as occurrence
    from quarantined
    where {{ content_hash }} not in (select repeated_contents.content_hash from repeated_contents)

    union all

    -- The same bad row delivered twice is two quarantined rows; the occurrence number keeps their ids apart.
    select
        quarantined.*,
        row_number() over (
            partition by source_name, raw_row_key, raw_values, quarantine_reason
            order by source_file
        ) as occurrence
    from quarantined
    where {{ content_hash }} in (select repeated_contents.content_hash from repeated_contents)

),

identified as (

    select
        {{ surrogate_key(['source_name', 'raw_row_key', 'raw_values', 'quarantine_reason', 'occurrence']) }}
            as quarantine_row_id,
        source_name,
        raw_row_key,
        quarantine_reason,
        raw_values,
        source_file
    from numbered

)

select
    identified.quarantine_row_id,
    identified.source_name,
    identified.raw_row_key,
    identified.quarantine_reason,
    identified.raw_values,
    identified.source_file,
    {%- if is_incremental() %}
        -- A row rewritten exactly as held keeps the run that first wrote it, so a run without new files
        -- changes nothing (and its data tests were run on it then).
        coalesce(held.loaded_at, {{ this_run_loaded_at() }}) as loaded_at
    from identified
    left join {{ this }} as held
        on
            identified.quarantine_row_id = held.quarantine_row_id
            and identified.source_file = held.source_file
    {%- else %}
        {{ this_run_loaded_at() }} as loaded_at
    from identified
    {%- endif %}
