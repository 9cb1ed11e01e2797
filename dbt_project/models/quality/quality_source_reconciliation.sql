-- Per source: raw = clean + quarantined + superseded. Each side is counted from a different model, so a
-- join that drops or fans out rows, or a rule that both quarantines and keeps a row, shows up as a
-- non-zero difference (and fails the build through the test on `difference`).
{%- set sources = [
    ('crm_customers', 'base_crm__customers', 'stg_crm__customers'),
    ('shop_orders', 'base_shop__orders', 'stg_shop__orders'),
    ('shop_order_lines', 'base_shop__order_lines', 'stg_shop__order_lines'),
    ('products', 'base_shop__products', 'stg_shop__products'),
    ('web_events', 'base_web__events', 'stg_web__events'),
    ('esp_events', 'base_esp__events', 'stg_esp__events'),
    ('consent_events', 'base_consent__events', 'stg_consent__events'),
    ('privacy_requests', 'base_privacy__requests', 'stg_privacy__requests'),
] %}

with raw_counts as (

    select
        source_name,
        raw_rows
    from {{ ref('quality_raw_row_counts') }}

),

clean_counts as (
    {% for source_name, base_model, staging_model in sources %}
        select
            '{{ source_name }}' as source_name,
            count(*) as clean_rows
        from {{ ref(staging_model) }}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

superseded_counts as (
    {% for source_name, base_model, staging_model in sources %}
        select
            '{{ source_name }}' as source_name,
            count(*) as superseded_rows
        from {{ ref(base_model) }}
        where is_superseded
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

quarantined_counts as (

    select
        source_name,
        count(*) as quarantined_rows
    from {{ ref('quality_quarantined_rows') }}
    group by source_name

)

select
    raw_counts.source_name,
    raw_counts.raw_rows,
    clean_counts.clean_rows,
    coalesce(quarantined_counts.quarantined_rows, 0) as quarantined_rows,
    superseded_counts.superseded_rows,
    raw_counts.raw_rows - clean_counts.clean_rows - coalesce(quarantined_counts.quarantined_rows, 0)
    - superseded_counts.superseded_rows as difference
from raw_counts
inner join clean_counts
    on raw_counts.source_name = clean_counts.source_name
inner join superseded_counts
    on raw_counts.source_name = superseded_counts.source_name
left join quarantined_counts
    on raw_counts.source_name = quarantined_counts.source_name
