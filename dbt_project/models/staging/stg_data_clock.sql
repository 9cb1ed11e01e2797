-- The warehouse's clock: the last day of trusted data. Event times after the end of that day come from
-- broken device clocks and are quarantined as future_dated. The shop's order updates and the web
-- collector's receipt times are trusted clocks; device-reported event times are not.

{{ config(materialized='table') }}

with trusted_clocks as (

    -- The latest order update and collector receipt of each landing file (stg_landing_files), so that the
    -- clock moves with each new file without re-reading the older ones.
    select latest_trusted_at as latest_at
    from {{ ref('stg_landing_files') }}
    where source_name in ('shop_orders', 'web_events')

),

latest_data as (

    -- Never later than now, so a corrupt far-future update cannot move the clock; today when there is no
    -- timestamped data at all.
    select
        cast(least(coalesce(max(latest_at), {{ dbt.current_timestamp() }}), {{ dbt.current_timestamp() }}) as date)
            as latest_data_date
    from trusted_clocks

)

select
    latest_data_date,
    cast({{ dbt.dateadd('day', 1, 'latest_data_date') }} as {{ dbt.type_timestamp() }}) as valid_until_at,
    {%- if var('as_of', none) %}
        cast('{{ var("as_of") }}' as date) as as_of_date
    {%- else %}
        latest_data_date as as_of_date
    {%- endif %}
from latest_data
