-- One row per order: its latest clean version, with money in the reporting currency.
with latest_versions as (

    select * from {{ ref('base_shop__orders') }}
    where
        quarantine_reason is null
        and not is_superseded

)

select
    order_id,
    customer_id,
    case when has_valid_email then email end as email,
    not has_valid_email and email is not null as had_invalid_email,
    status,
    status in ('placed', 'paid', 'shipped') as is_completed,
    currency,
    fx_rate_to_reporting,
    coalesce(subtotal, total) as subtotal,
    -- Cast back to the amounts' type: with the literal 0, PostgreSQL's coalesce drops numeric's scale.
    cast(coalesce(discount, 0) as {{ dbt.type_numeric() }}) as discount,
    cast(coalesce(shipping, 0) as {{ dbt.type_numeric() }}) as shipping,
    cast(coalesce(tax, 0) as {{ dbt.type_numeric() }}) as tax,
    total,
    -- Net revenue excludes shipping and tax; the reporting currency is var('reporting_currency').
    {{ in_reporting_currency('coalesce(subtotal, total) - coalesce(discount, 0)') }} as net_revenue_reporting,
    {{ in_reporting_currency('total') }} as total_reporting,
    created_at,
    updated_at,
    -- base_'s run stamp, passed through so that a build's data tests of this view check only the orders
    -- base_shop__orders rewrote (meta loaded_at_from).
    loaded_at
from latest_versions
