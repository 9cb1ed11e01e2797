-- One row per product: its latest clean version, price in the reporting currency.
with latest_versions as (

    select * from {{ ref('base_shop__products') }}
    where
        quarantine_reason is null
        and not is_superseded

)

select
    product_id,
    sku,
    product_name,
    category,
    brand,
    price,
    currency,
    {{ in_reporting_currency('price') }} as price_reporting,
    is_active,
    image_url,
    product_url,
    updated_at
from latest_versions
