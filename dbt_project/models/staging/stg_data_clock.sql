-- The warehouse's clock: the last day of trusted data. Event times after the end of that day come from
-- broken device clocks and are quarantined as future_dated. The shop's order updates and the web
-- collector's receipt times are trusted clocks; device-reported event times are not.

{{ config(materialized='table') }}

with order_updates as (

    select max({{ to_utc_timestamp('updated_at') }}) as latest_at
    from {{ source('shop', 'orders') }}

),

collector_receipts as (

    select max({{ to_utc_timestamp('received_at') }}) as latest_at
    from {{ source('web', 'events') }}

),

trusted_clocks as (

    select latest_at from order_updates
    union all
    select latest_at from collector_receipts

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
