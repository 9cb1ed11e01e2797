-- Every rejected raw row, from every source, with the reason and its raw values, so that it can be fixed
-- at the source. Nothing is dropped silently: see quality_source_reconciliation.
{%- set base_models = [
    ('crm_customers', 'base_crm__customers'),
    ('shop_orders', 'base_shop__orders'),
    ('shop_order_lines', 'base_shop__order_lines'),
    ('products', 'base_shop__products'),
    ('web_events', 'base_web__events'),
    ('esp_events', 'base_esp__events'),
    ('consent_events', 'base_consent__events'),
    ('privacy_requests', 'base_privacy__requests'),
] %}

with quarantined as (
    {% for source_name, base_model in base_models %}
        select
            '{{ source_name }}' as source_name,
            raw_row_key,
            quarantine_reason,
            raw_values,
            source_file
        from {{ ref(base_model) }}
        where quarantine_reason is not null
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

numbered as (

    -- The same bad row delivered twice is two quarantined rows; the occurrence number keeps their ids apart.
    select
        *,
        row_number() over (
            partition by source_name, raw_row_key, raw_values, quarantine_reason
            order by source_file
        ) as occurrence
    from quarantined

)

select
    {{ surrogate_key(['source_name', 'raw_row_key', 'raw_values', 'quarantine_reason', 'occurrence']) }}
        as quarantine_row_id,
    source_name,
    raw_row_key,
    quarantine_reason,
    raw_values,
    source_file
from numbered
