-- Rows per landing-zone source as delivered, before any cleaning: the raw side of the reconciliation
-- raw = clean + quarantined + superseded.
{%- set landing_sources = [
    ('crm_customers', 'crm', 'customers'),
    ('shop_orders', 'shop', 'orders'),
    ('shop_order_lines', 'shop', 'order_lines'),
    ('products', 'shop', 'products'),
    ('web_events', 'web', 'events'),
    ('esp_events', 'esp', 'events'),
    ('consent_events', 'consent', 'events'),
    ('privacy_requests', 'privacy', 'requests'),
] %}

with raw_row_counts as (
    {% for landing_name, source_name, table_name in landing_sources %}
        select
            '{{ landing_name }}' as source_name,
            count(*) as raw_rows
        from {{ source(source_name, table_name) }}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select
    source_name,
    cast(raw_rows as {{ dbt.type_bigint() }}) as raw_rows
from raw_row_counts
