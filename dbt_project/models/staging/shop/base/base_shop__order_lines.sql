-- Every raw order line, parsed, with its quarantine reason (null when clean) and whether it is a repeated
-- delivery of a line already seen.

-- Incremental: a run checks again the lines whose verdict, fx rate or product flag may have changed, and
-- equals a full refresh (tests/dbt/test_incremental_events.py):
--   - the lines of landing files it has not loaded (unloaded_landing_files);
--   - the lines of the orders base_shop__orders rewrote since this model's last run (loaded_after_this): a
--     new version may be the order's first delivery or first clean version, or change its currency;
--   - the lines flagged as unknown products whose product the clean catalogue now has;
--   - the lines without an order_line_id (never merged by key; few).
-- Each with every row of the same order_line_id, so duplicate deliveries rank as in a full refresh. The
-- rows it already holds are read back parsed from this model. A clean line never turns quarantined while
-- landing files are only added (orders are only ever delivered and cleaned, never withdrawn), so the raw
-- text the model keeps for quarantined rows is all a rerun needs. The merge is on raw_row_key (the
-- delivered order_line_id, blank for rows without one), which every row of a reprocessed order_line_id
-- shares with no row outside the run. Run with --full-refresh after editing a landing file in place or
-- changing the fx_rates seed.
{{
    config(
        materialized='incremental',
        unique_key='raw_row_key',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

{%- set raw_columns = ['order_line_id', 'order_id', 'product_id', 'quantity', 'unit_price'] %}

-- On a full build the rows are read three times (the repeated keys, then the rows with and without one),
-- each time from the raw files (not_materialized): held in memory, the parsed rows were wider than the raw
-- table.
with source_rows as {{ not_materialized() if not is_incremental() }} (

    select * from {{ source('shop', 'order_lines') }}
    {%- if is_incremental() %}
        where {{ unloaded_landing_files(source('shop', 'order_lines')) }}
    {%- endif %}

),

catalogue as (

    select distinct product_id from {{ ref('base_shop__products') }}
    where quarantine_reason is null

),

repeated_order_line_ids as (

    {{ repeated_key_digests('source_rows', "nullif(" ~ trimmed('order_line_id') ~ ", '')") }}

),

tagged_rows as {{ not_materialized() }} (

    {{ tagged_by_repeated_key('source_rows', 'repeated_order_line_ids', 'order_line_id') }}

),

parsed as {{ not_materialized() }} (

    select
        {{ raw_row_key(['order_line_id']) }} as raw_row_key,
        {{ row_fingerprint(raw_columns) }} as row_fingerprint,
        _source_file as source_file,
        nullif({{ trimmed('order_line_id') }}, '') as order_line_id,
        nullif({{ trimmed('order_id') }}, '') as order_id,
        nullif({{ trimmed('product_id') }}, '') as product_id,
        nullif({{ trimmed('quantity') }}, '') as raw_quantity,
        nullif({{ trimmed('unit_price') }}, '') as raw_unit_price,
        {{ safe_cast(safe_cast(trimmed('quantity'), dbt.type_numeric()), dbt.type_bigint()) }} as quantity,
        {{ safe_cast(trimmed('unit_price'), dbt.type_numeric()) }} as unit_price,
        -- The text as delivered, kept until the quarantine verdict: only rejected rows carry it on.
        {{ raw_columns_as(raw_columns) }},
        has_repeated_key
    from tagged_rows

),

{% if is_incremental() %}
    changed_orders as (

        select distinct order_id from {{ ref('base_shop__orders') }}
        where {{ loaded_after_this() }}

    ),

    reprocessed_line_ids as (

        select parsed.order_line_id from parsed
        where parsed.order_line_id is not null
        union
        select loaded.order_line_id from {{ this }} as loaded
        where
            loaded.order_id in (select changed_orders.order_id from changed_orders)
            or (
                not loaded.is_known_product
                and loaded.product_id in (select catalogue.product_id from catalogue)
            )

    ),

    candidate_rows as (

        -- Rows of new files with their delivered text, and the reprocessed rows this model holds, parsed.
        select
            parsed.raw_row_key,
            parsed.row_fingerprint,
            parsed.source_file,
            parsed.order_line_id,
            parsed.order_id,
            parsed.product_id,
            parsed.raw_quantity,
            parsed.raw_unit_price,
            parsed.quantity,
            parsed.unit_price,
            {{ raw_values(raw_columns, prefix='raw__') }} as delivered_raw_values,
            true as has_repeated_key
        from parsed

        union all

        select
            loaded.raw_row_key,
            loaded.row_fingerprint,
            loaded.source_file,
            loaded.order_line_id,
            loaded.order_id,
            loaded.product_id,
            loaded.raw_quantity,
            loaded.raw_unit_price,
            loaded.quantity,
            loaded.unit_price,
            loaded.raw_values as delivered_raw_values,
            true as has_repeated_key
        from {{ this }} as loaded
        where
            loaded.order_line_id in (select reprocessed_line_ids.order_line_id from reprocessed_line_ids)
            or loaded.order_line_id is null

    ),
{% else %}
    candidate_rows as {{ not_materialized() }} (

        select * from parsed

    ),
{% endif %}

quarantined_orders as (

    -- Orders delivered with no clean version: they tell a line whose order was itself quarantined from an
    -- orphan. An order with a clean version is in clean_orders, so only the quarantined rows are read here,
    -- not the distinct order_id of every delivered row (a hash aggregate over every order version).
    -- base_shop__orders holds every raw order row with its order_id trimmed, already parsed.
    select distinct order_id
    from {{ ref('base_shop__orders') }}
    where
        quarantine_reason is not null
        and {{ 'order_id in (select candidate_rows.order_id from candidate_rows)' if is_incremental() else '1 = 1' }}

),

clean_orders as (

    select
        order_id,
        fx_rate_to_reporting
    from {{ ref('stg_shop__orders') }}
    {%- if is_incremental() %}
        where order_id in (select candidate_rows.order_id from candidate_rows)
    {%- endif %}

),

classified as {{ not_materialized() }} (

    select
        parsed.*,
        clean_orders.fx_rate_to_reporting,
        catalogue.product_id is not null as is_known_product,
        case
            when parsed.order_line_id is null or parsed.order_id is null then 'missing_key'
            when parsed.raw_quantity is not null and parsed.quantity is null then 'non_numeric_amount'
            when parsed.unit_price is null then 'non_numeric_amount'
            when parsed.unit_price < 0 then 'negative_amount'
            when parsed.quantity <= 0 then 'invalid_quantity'
            when clean_orders.order_id is null and quarantined_orders.order_id is null then 'orphan_line'
            when clean_orders.order_id is null then 'order_quarantined'
        end as quarantine_reason
    from candidate_rows as parsed
    left join quarantined_orders
        on parsed.order_id = quarantined_orders.order_id
    left join clean_orders
        on parsed.order_id = clean_orders.order_id
    left join catalogue
        on parsed.product_id = catalogue.product_id

),

checked as {{ not_materialized() }} (

    -- The delivered text survives only for quarantined rows, so the rows ranked below are narrow.
    select
        raw_row_key,
        {%- if is_incremental() %}
            case when quarantine_reason is not null then delivered_raw_values end as raw_values,
        {%- else %}
            {{ quarantined_raw_values(raw_columns) }} as raw_values,
        {%- endif %}
        row_fingerprint,
        source_file,
        order_line_id,
        order_id,
        product_id,
        raw_quantity,
        raw_unit_price,
        quantity,
        unit_price,
        fx_rate_to_reporting,
        is_known_product,
        quarantine_reason,
        has_repeated_key
    from classified

),

versioned as (

    {{ with_repeated_keys_ranked('checked', ['order_line_id'], ['checked.row_fingerprint desc']) }}

)

select
    raw_row_key,
    raw_values,
    row_fingerprint,
    source_file,
    order_line_id,
    order_id,
    product_id,
    raw_quantity,
    raw_unit_price,
    quantity,
    unit_price,
    fx_rate_to_reporting,
    is_known_product,
    quarantine_reason,
    is_superseded,
    {{ this_run_loaded_at() }} as loaded_at
from versioned
