-- Every raw order line, parsed, with its quarantine reason (null when clean) and whether it is a repeated
-- delivery of a line already seen.

{{ config(materialized='table') }}

{%- set raw_columns = ['order_line_id', 'order_id', 'product_id', 'quantity', 'unit_price'] %}

-- The rows are read three times (the repeated keys, then the rows with and without one), each time from
-- the raw files (not_materialized): held in memory, the parsed rows were wider than the raw table.
with source_rows as {{ not_materialized() }} (

    select * from {{ source('shop', 'order_lines') }}

),

delivered_orders as (

    -- Orders present in the raw export at all, clean or not: tells an orphan from a line whose order
    -- was itself quarantined.
    -- base_shop__orders holds every raw order row with its order_id trimmed, already parsed.
    select distinct order_id
    from {{ ref('base_shop__orders') }}

),

clean_orders as (

    select
        order_id,
        fx_rate_to_reporting
    from {{ ref('stg_shop__orders') }}

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
            when delivered_orders.order_id is null then 'orphan_line'
            when clean_orders.order_id is null then 'order_quarantined'
        end as quarantine_reason
    from parsed
    left join delivered_orders
        on parsed.order_id = delivered_orders.order_id
    left join clean_orders
        on parsed.order_id = clean_orders.order_id
    left join catalogue
        on parsed.product_id = catalogue.product_id

),

checked as {{ not_materialized() }} (

    -- The delivered text survives only for quarantined rows, so the rows ranked below are narrow.
    select
        raw_row_key,
        {{ quarantined_raw_values(raw_columns) }} as raw_values,
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
    is_superseded
from versioned
