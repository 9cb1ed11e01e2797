-- The training cutoffs: the latest is the as-of date minus var `ml_horizon_days`, then one every
-- var `ml_cutoff_spacing_days` days back, var `ml_cutoff_count` of them. So every label window
-- (cutoff, cutoff + horizon] ends at or before the as-of date and none crosses it. Cutoffs before the
-- first order date are dropped: there is nothing to learn from them.
with clock as (

    select as_of_date from {{ ref('stg_data_clock') }}

),

first_orders as (

    select min(cast(versions.created_at as date)) as first_order_date
    from {{ ref('stg_shop__order_versions') }} as versions
    cross join clock
    where versions.created_at < {{ as_of_end_at('clock.as_of_date') }}

),

cutoff_indexes as (

    -- 0 .. ml_cutoff_count - 1
    select series.generated_number - 1 as cutoff_index
    from ({{ dbt.generate_series(var('ml_cutoff_count', 6) | int) }}) as series

),

cutoffs as (

    select
        cutoff_indexes.cutoff_index,
        cast(
            {{ dbt.dateadd(
                'day',
                '-1 * (' ~ (var('ml_horizon_days', 90) | int) ~ ' + cutoff_indexes.cutoff_index * '
                    ~ (var('ml_cutoff_spacing_days', 30) | int) ~ ')',
                'clock.as_of_date'
            ) }} as date
        ) as cutoff_date
    from cutoff_indexes
    cross join clock

)

select
    cast(cutoffs.cutoff_date as date) as cutoff_date,
    cast(cutoffs.cutoff_index as {{ dbt.type_int() }}) as cutoff_index,
    cast({{ var('ml_horizon_days', 90) | int }} as {{ dbt.type_int() }}) as horizon_days,
    cast(
        {{ dbt.dateadd('day', var('ml_horizon_days', 90) | int, 'cutoffs.cutoff_date') }} as date
    ) as label_window_end_date
from cutoffs
cross join first_orders
where cutoffs.cutoff_date >= first_orders.first_order_date
