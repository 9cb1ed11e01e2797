-- Rows per landing-zone source as delivered, before any cleaning. The raw side of the reconciliation
-- raw = clean + quarantined + superseded.
with raw_row_counts as (

    select 'crm_customers' as source_name, count(*) as raw_rows from {{ source('crm', 'customers') }}
    union all
    select 'shop_orders' as source_name, count(*) as raw_rows from {{ source('shop', 'orders') }}
    union all
    select 'shop_order_lines' as source_name, count(*) as raw_rows from {{ source('shop', 'order_lines') }}
    union all
    select 'products' as source_name, count(*) as raw_rows from {{ source('shop', 'products') }}
    union all
    select 'web_events' as source_name, count(*) as raw_rows from {{ source('web', 'events') }}
    union all
    select 'esp_events' as source_name, count(*) as raw_rows from {{ source('esp', 'events') }}
    union all
    select 'consent_events' as source_name, count(*) as raw_rows from {{ source('consent', 'events') }}
    union all
    select 'privacy_requests' as source_name, count(*) as raw_rows from {{ source('privacy', 'requests') }}

)

select
    source_name,
    cast(raw_rows as {{ dbt.type_bigint() }}) as raw_rows
from raw_row_counts
