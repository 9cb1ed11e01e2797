-- One row per landing file of every source: the rows it delivered and, for the two trusted clocks (the
-- shop's order updates and the web collector's receipts), its latest timestamp. stg_data_clock and
-- quality_raw_row_counts aggregate it, so that neither re-reads every landing file on each run.
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
    )
}}

{%- set landing_sources = [
    ('crm_customers', 'crm', 'customers', none),
    ('shop_orders', 'shop', 'orders', 'updated_at'),
    ('shop_order_lines', 'shop', 'order_lines', none),
    ('products', 'shop', 'products', none),
    ('web_events', 'web', 'events', 'received_at'),
    ('esp_events', 'esp', 'events', none),
    ('consent_events', 'consent', 'events', none),
    ('privacy_requests', 'privacy', 'requests', none),
] %}

-- Incremental by landing file: a run adds the files it has not counted yet, and a file's counts never
-- change afterwards because landing files are immutable (as for the incremental base_ models: after
-- editing or removing a landing file, run with --full-refresh). So an incremental run equals a full
-- refresh. The files already counted are written into the SQL as constants (macro landing_files_not_counted),
-- so the warehouse skips them outright instead of reading their rows to filter them. Rows without a
-- _source_file are counted by a full refresh only: the landing-zone views always set it; an EL tool must
-- load it.
with file_counts as (
    {% for landing_name, source_name, table_name, trusted_clock in landing_sources %}
        {%- set latest_trusted = 'max(' ~ to_utc_timestamp(trusted_clock) ~ ')' if trusted_clock
            else 'cast(null as ' ~ dbt.type_timestamp() ~ ')' %}
        select
            '{{ landing_name }}' as source_name,
            _source_file as source_file,
            count(*) as raw_rows,
            {{ latest_trusted }} as latest_trusted_at
        from {{ source(source_name, table_name) }}
        where {{ landing_files_not_counted(landing_name) }}
        group by _source_file
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select
    source_name,
    source_file,
    cast(raw_rows as {{ dbt.type_bigint() }}) as raw_rows,
    latest_trusted_at,
    {{ this_run_loaded_at() }} as loaded_at
from file_counts
