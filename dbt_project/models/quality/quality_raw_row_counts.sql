-- Rows per landing-zone source as delivered, before any cleaning: the raw side of the reconciliation
-- raw = clean + quarantined + superseded. Summed from the per-file counts of stg_landing_files, which
-- counts each landing file once, when it arrives.
{%- set landing_sources = ['crm_customers', 'shop_orders', 'shop_order_lines', 'products', 'web_events',
                           'esp_events', 'consent_events', 'privacy_requests'] %}

with contract_sources as (
    {% for landing_name in landing_sources %}
        select '{{ landing_name }}' as source_name
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

file_counts as (

    select
        source_name,
        raw_rows
    from {{ ref('stg_landing_files') }}

),

source_counts as (

    select
        source_name,
        sum(raw_rows) as raw_rows
    from file_counts
    group by source_name

)

select
    contract_sources.source_name,
    -- An absent source has no files: zero rows.
    cast(coalesce(source_counts.raw_rows, 0) as {{ dbt.type_bigint() }}) as raw_rows
from contract_sources
left join source_counts
    on contract_sources.source_name = source_counts.source_name
