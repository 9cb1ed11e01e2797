-- One row per order line of a clean order, with its value in the reporting currency.
with clean_lines as (

    select * from {{ ref('base_shop__order_lines') }}
    where
        quarantine_reason is null
        and not is_superseded

)

select
    order_line_id,
    order_id,
    product_id,
    is_known_product,
    coalesce(quantity, 1) as quantity,
    unit_price,
    {{ in_reporting_currency('unit_price') }} as unit_price_reporting,
    {{ in_reporting_currency('coalesce(quantity, 1) * unit_price') }} as line_value_reporting,
    -- base_'s run stamp, passed through so that a build's data tests of this view check only the lines
    -- base_shop__order_lines rewrote (meta loaded_at_from).
    loaded_at
from clean_lines
