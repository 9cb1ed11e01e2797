-- Every raw order row, parsed, with the reason it is quarantined (null when clean) and whether a later
-- version of the same order supersedes it. stg_shop__orders and the quality models read from here.

{{ config(materialized='table') }}

with source_rows as (

    select * from {{ source('shop', 'orders') }}

),

fx_rates as (

    {{ fx_rates_to_reporting() }}

),

parsed as (

    select
        {{ raw_row_key(['order_id', 'updated_at']) }} as raw_row_key,
        {{ raw_values(['order_id', 'customer_id', 'email', 'status', 'currency', 'subtotal', 'discount',
                       'shipping', 'tax', 'total', 'created_at', 'updated_at']) }} as raw_values,
        {{ row_fingerprint(['order_id', 'customer_id', 'email', 'status', 'currency', 'subtotal', 'discount',
                       'shipping', 'tax', 'total', 'created_at', 'updated_at']) }} as row_fingerprint,
        _source_file as source_file,
        nullif(trim(order_id), '') as order_id,
        nullif(trim(customer_id), '') as customer_id,
        {{ normalize_email('email') }} as email,
        lower(trim(status)) as status,
        upper(trim(currency)) as currency,
        nullif(trim(subtotal), '') as raw_subtotal,
        nullif(trim(discount), '') as raw_discount,
        nullif(trim(shipping), '') as raw_shipping,
        nullif(trim(tax), '') as raw_tax,
        nullif(trim(total), '') as raw_total,
        {{ safe_cast('trim(subtotal)', dbt.type_numeric()) }} as subtotal,
        {{ safe_cast('trim(discount)', dbt.type_numeric()) }} as discount,
        {{ safe_cast('trim(shipping)', dbt.type_numeric()) }} as shipping,
        {{ safe_cast('trim(tax)', dbt.type_numeric()) }} as tax,
        {{ safe_cast('trim(total)', dbt.type_numeric()) }} as total,
        {{ to_utc_timestamp('created_at') }} as created_at,
        {{ to_utc_timestamp('updated_at') }} as updated_at
    from source_rows

),

checked as (

    select
        parsed.*,
        fx_rates.fx_rate_to_reporting,
        {{ is_valid_email('parsed.email') }} as has_valid_email,
        case
            when parsed.order_id is null then 'missing_order_id'
            when parsed.created_at is null or parsed.updated_at is null then 'unparseable_timestamp'
            when
                (parsed.raw_subtotal is not null and parsed.subtotal is null)
                or (parsed.raw_discount is not null and parsed.discount is null)
                or (parsed.raw_shipping is not null and parsed.shipping is null)
                or (parsed.raw_tax is not null and parsed.tax is null)
                or parsed.total is null
                then 'non_numeric_amount'
            when
                parsed.subtotal < 0 or parsed.discount < 0 or parsed.shipping < 0 or parsed.tax < 0
                or parsed.total < 0
                then 'negative_amount'
            when fx_rates.currency_code is null then 'unknown_currency'
            when
                parsed.status not in ('placed', 'paid', 'shipped', 'cancelled', 'refunded')
                or parsed.status is null
                then 'unknown_status'
            when parsed.email like '%@test.invalid' or parsed.email like '%@%.test' then 'test_order'
            -- A guest order is known only by its email; without a valid one it belongs to nobody.
            when parsed.customer_id is null and not {{ is_valid_email('parsed.email') }}
                then 'invalid_email'
        end as quarantine_reason
    from parsed
    left join fx_rates
        on parsed.currency = fx_rates.currency_code

),

versioned as (

    select
        checked.*,
        -- The latest clean version wins; verbatim re-deliveries tie and are broken on the raw text.
        {{ is_superseded(
            'checked', ['order_id'], ['checked.updated_at desc', 'checked.row_fingerprint desc']
        ) }} as is_superseded
    from checked

)

select * from versioned
