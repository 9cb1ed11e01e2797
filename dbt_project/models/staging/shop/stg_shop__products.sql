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
    price * fx_rate_to_reporting as price_reporting,
    is_active,
    image_url,
    product_url,
    updated_at
from latest_versions
