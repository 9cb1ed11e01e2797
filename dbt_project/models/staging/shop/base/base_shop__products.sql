-- Every raw product version, parsed, with its quarantine reason and whether a later version supersedes it.

{{ config(materialized='table') }}

with source_rows as (

    select * from {{ source('shop', 'products') }}

),

fx_rates as (

    {{ fx_rates_to_reporting() }}

),

parsed as (

    select
        {{ raw_row_key(['product_id', 'updated_at']) }} as raw_row_key,
        {{ raw_values(['product_id', 'sku', 'name', 'category', 'brand', 'price', 'currency', 'is_active',
                       'image_url', 'product_url', 'updated_at']) }} as raw_values,
        {{ row_fingerprint(['product_id', 'sku', 'name', 'category', 'brand', 'price', 'currency', 'is_active',
                       'image_url', 'product_url', 'updated_at']) }} as row_fingerprint,
        _source_file as source_file,
        nullif({{ trimmed('product_id') }}, '') as product_id,
        nullif({{ trimmed('sku') }}, '') as sku,
        nullif({{ trimmed('name') }}, '') as product_name,
        nullif(lower({{ trimmed('category') }}), '') as category,
        nullif({{ trimmed('brand') }}, '') as brand,
        {{ safe_cast(trimmed('price'), dbt.type_numeric()) }} as price,
        -- A blank code (spaces only) is missing too, not a currency of its own.
        coalesce(nullif(upper({{ trimmed('currency') }}), ''), '{{ var("reporting_currency") }}') as currency,
        lower({{ trimmed('is_active') }}) in ('true', 't', '1', 'yes', 'y') as is_active,
        nullif({{ trimmed('image_url') }}, '') as image_url,
        nullif({{ trimmed('product_url') }}, '') as product_url,
        {{ to_utc_timestamp('updated_at') }} as updated_at
    from source_rows

),

checked as (

    select
        parsed.*,
        fx_rates.fx_rate_to_reporting,
        case
            when parsed.product_id is null then 'missing_product_id'
            when parsed.updated_at is null then 'unparseable_timestamp'
        end as quarantine_reason
    from parsed
    left join fx_rates
        on parsed.currency = fx_rates.currency_code

),

versioned as (

    select
        checked.*,
        {{ is_superseded(
            'checked', ['product_id'], ['checked.updated_at desc', 'checked.row_fingerprint desc']
        ) }} as is_superseded
    from checked

)

select * from versioned
