-- Seasonal exposure of each label window: how much buying its calendar days carry, relative to an average
-- stretch of the same length, read from the same days one year earlier. A 180-day window from July holds
-- the holiday peak and one from January does not; a forecast for "the next 180 days" that ignores this is
-- calibrated on one season and applied to another (ml/stacking.py turns each window into effective days:
-- horizon_days x seasonal_exposure).
--
-- exposure = (orders placed in the same window a year earlier / its days)
--            / (orders placed in the 365 days centred on that window / 365)
-- Centring the reference year on last year's window cancels a steady growth or decline of the customer
-- base. Orders count by the day they were placed, whatever their status: a cancelled order shows demand
-- too. Every day counted is at or before the cutoff, so nothing after it changes the figure. A window with
-- less history than that reference year, or fewer than var `ml_seasonal_min_reference_orders` (1000)
-- orders in it, gets exposure 1: no seasonal adjustment.
{%- set windows = ml_training_windows() %}
{#- var ml_scoring_horizon_days: a horizon the scores are mapped to beyond the trained windows (set by
    `personalize backtest`, which trains on a shorter window than the one it forecasts). -#}
{%- set scoring_days = var('ml_scoring_horizon_days', 0) | int %}
{%- set scoring_windows = (windows | map(attribute='horizon_days') | list)
    + ([scoring_days] if scoring_days > 0 else []) %}
with clock as (

    select as_of_date from {{ ref('stg_data_clock') }}

),

label_windows as (

    select
        cutoff_date,
        horizon_days
    from {{ ref('ml_training_cutoffs') }}
    {% for days in scoring_windows -%}
        -- the scoring cutoff's window of this length: its scores are for the as-of date's next days
        union
        select clock.as_of_date as cutoff_date, {{ days }} as horizon_days from clock
    {% endfor %}

),

daily_orders as (

    -- orders placed per day, each order once (ml_seasonal_clock counts them)
    select
        clock_date as order_date,
        order_count
    from {{ ref('ml_seasonal_clock') }}
    where order_count > 0

),

first_order as (

    select min(order_date) as first_order_date from daily_orders

),

window_spans as (

    select
        cutoff_date,
        horizon_days,
        cast(floor(horizon_days / 2.0) as {{ dbt.type_int() }}) as half_window_days
    from label_windows

),

window_bounds as (

    -- (start, end]: a window's days after its start date up to and including its end date
    select
        cutoff_date,
        horizon_days,
        cast({{ dbt.dateadd('day', -365, 'cutoff_date') }} as date) as last_year_start_date,
        cast({{ dbt.dateadd('day', 'horizon_days - 365', 'cutoff_date') }} as date) as last_year_end_date,
        cast({{ dbt.dateadd('day', 'half_window_days - 365 - 182', 'cutoff_date') }} as date)
            as reference_start_date,
        cast({{ dbt.dateadd('day', 'half_window_days - 365 + 183', 'cutoff_date') }} as date)
            as reference_end_date
    from window_spans

),

window_orders as (

    select
        window_bounds.cutoff_date,
        window_bounds.horizon_days,
        coalesce(sum(
            case
                when
                    daily_orders.order_date > window_bounds.last_year_start_date
                    and daily_orders.order_date <= window_bounds.last_year_end_date
                    then daily_orders.order_count
            end
        ), 0) as last_year_window_orders,
        coalesce(sum(daily_orders.order_count), 0) as reference_year_orders
    from window_bounds
    left join daily_orders
        on
            window_bounds.reference_start_date < daily_orders.order_date
            and window_bounds.reference_end_date >= daily_orders.order_date
            -- a reference year reaching past the cutoff (windows over 364 days) is never used; this keeps
            -- even its counts clear of later facts
            and window_bounds.cutoff_date >= daily_orders.order_date
    group by window_bounds.cutoff_date, window_bounds.horizon_days

),

assessed as (

    select
        window_orders.cutoff_date,
        window_orders.horizon_days,
        window_orders.last_year_window_orders,
        window_orders.reference_year_orders,
        (
            window_bounds.reference_start_date >= first_order.first_order_date
            and window_bounds.reference_end_date <= window_bounds.cutoff_date
            and window_orders.reference_year_orders >= {{ var('ml_seasonal_min_reference_orders', 1000) | int }}
        ) as has_seasonal_history
    from window_orders
    inner join window_bounds
        on
            window_orders.cutoff_date = window_bounds.cutoff_date
            and window_orders.horizon_days = window_bounds.horizon_days
    cross join first_order

)

select
    cast(cutoff_date as date) as cutoff_date,
    cast(horizon_days as {{ dbt.type_int() }}) as horizon_days,
    cast(last_year_window_orders as {{ dbt.type_int() }}) as last_year_window_orders,
    cast(reference_year_orders as {{ dbt.type_int() }}) as reference_year_orders,
    has_seasonal_history,
    cast(
        case
            when has_seasonal_history
                then (last_year_window_orders * 365.0) / (reference_year_orders * horizon_days)
            else 1.0
        end as {{ type_double() }}
    ) as seasonal_exposure
from assessed
