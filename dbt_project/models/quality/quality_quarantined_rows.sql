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

{#- What makes two quarantined rows the same content, as a compact digest (key_digest). -#}
{%- set content_hash = key_digest(dbt.concat([
    'source_name', "'|'", "coalesce(raw_row_key, '')", "'|'", "coalesce(raw_values, '')", "'|'", 'quarantine_reason'
])) %}

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

repeated_contents as (

    -- Rows whose content hash another row shares: verbatim duplicates, and the rare rows whose different
    -- contents hash alike. A row outside them has content no other row has, so it is occurrence 1 without
    -- ranking; the exact window below ranks the few others, so a hash collision costs time, never ids.
    select {{ content_hash }} as content_hash
    from quarantined
    group by {{ content_hash }}
    having count(*) > 1

),

numbered as (

    select
        quarantined.*,
        1 as occurrence
    from quarantined
    where {{ content_hash }} not in (select repeated_contents.content_hash from repeated_contents)

    union all

    -- The same bad row delivered twice is two quarantined rows; the occurrence number keeps their ids apart.
    select
        quarantined.*,
        row_number() over (
            partition by source_name, raw_row_key, raw_values, quarantine_reason
            order by source_file
        ) as occurrence
    from quarantined
    where {{ content_hash }} in (select repeated_contents.content_hash from repeated_contents)

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
