-- The training cutoffs of each label window (macro ml_training_windows: the main window, var
-- `ml_horizon_days`, and an optional short one, var `ml_short_horizon_days`). A window's latest cutoff is
-- the as-of date minus its length, then one every var `ml_cutoff_spacing_days` days back, its cutoff count
-- of them. So every label window (cutoff, cutoff + horizon] ends at or before the as-of date and none
-- crosses it. Cutoffs before the first order date are dropped: there is nothing to learn from them.
{%- set windows = ml_training_windows() %}
with clock as (

    select as_of_date from {{ ref('stg_data_clock') }}

),

first_orders as (

    select min(cast(versions.created_at as date)) as first_order_date
    from {{ ref('stg_shop__order_versions') }} as versions
    cross join clock
    where versions.created_at < {{ as_of_end_at('clock.as_of_date') }}

),

label_windows as (

    {% for window in windows -%}
        {% if not loop.first %}union all{% endif %}
        select
            {{ window.horizon_days }} as horizon_days,
            {{ window.cutoff_count }} as cutoff_count
    {% endfor %}

),

cutoff_indexes as (

    -- 0 .. the largest cutoff count - 1
    select series.generated_number - 1 as cutoff_index
    from ({{ dbt.generate_series(windows | map(attribute='cutoff_count') | max) }}) as series

),

cutoffs as (

    select
        label_windows.horizon_days,
        cutoff_indexes.cutoff_index,
        cast(
            {{ dbt.dateadd(
                'day',
                '-1 * (label_windows.horizon_days + cutoff_indexes.cutoff_index * '
                    ~ (var('ml_cutoff_spacing_days', 30) | int) ~ ')',
                'clock.as_of_date'
            ) }} as date
        ) as cutoff_date
    from label_windows
    inner join cutoff_indexes
        on label_windows.cutoff_count > cutoff_indexes.cutoff_index
    cross join clock

)

select
    cast(cutoffs.cutoff_date as date) as cutoff_date,
    cast(cutoffs.cutoff_index as {{ dbt.type_int() }}) as cutoff_index,
    cast(cutoffs.horizon_days as {{ dbt.type_int() }}) as horizon_days,
    cast(
        {{ dbt.dateadd('day', 'cutoffs.horizon_days', 'cutoffs.cutoff_date') }} as date
    ) as label_window_end_date
from cutoffs
cross join first_orders
where cutoffs.cutoff_date >= first_orders.first_order_date
