-- Seasonal clock: every day of the order history up to the as-of date, with how much buying that calendar
-- day carries relative to an average day (seasonal_index) and the running total of it (seasonal_clock).
-- BG/NBD measures a customer's history (first purchase, last purchase, cutoff) in days and assumes buying
-- at a steady rate; with a holiday peak someone whose purchases fell in the rush looks more active than
-- they are. ml/stacking.py measures the history on this clock instead, in average days: the clock's
-- difference between two dates is the number of average days between them.
--
-- seasonal_index(d) = (orders placed in the 7 days centred on d - 365, per day)
--                     / (orders placed in the 365 days centred on d - 365, per day)
-- read a year earlier so that it rests on orders placed by d - 183 only: a cutoff's history is measured
-- with facts from before it, whatever came later. Centring the reference year on the same day cancels a
-- steady growth or decline of the customer base. Orders count by the day they were placed, whatever their
-- status. A day whose reference year starts before the first order, or holds fewer than var
-- `ml_seasonal_min_reference_orders` (1000) orders, gets index 1: calendar days.
--
-- The daily rows also carry the order counts ml_seasonal_exposure reads (one count of orders per day).
-- Var `ml_seasonal_clock_max_days` (7305, 20 years) bounds the days listed, from the first order to the
-- as-of date: a longer history loses its earliest days, which ml/frames.py counts as calendar days.
{%- set max_days = var('ml_seasonal_clock_max_days', 7305) | int %}
{%- set half_week = 3 %}
{%- set half_year = 182 %}
with clock as (

    select as_of_date from {{ ref('stg_data_clock') }}

),

order_dates as (

    select cast(min(versions.created_at) as date) as order_date
    from {{ ref('stg_shop__order_versions') }} as versions
    group by versions.order_id

),

daily_orders as (

    select
        order_date,
        count(*) as order_count
    from order_dates
    group by order_date

),

first_order as (

    select min(order_date) as first_order_date from order_dates

),

listed_span as (

    -- the first order's date, or the earliest of the last ml_seasonal_clock_max_days days to the as-of date
    select
        clock.as_of_date,
        first_order.first_order_date,
        case
            when first_order.first_order_date > {{ dbt.dateadd('day', 1 - max_days, 'clock.as_of_date') }}
                then first_order.first_order_date
            else cast({{ dbt.dateadd('day', 1 - max_days, 'clock.as_of_date') }} as date)
        end as first_listed_date
    from clock
    cross join first_order
    where first_order.first_order_date is not null

),

day_numbers as (

    select generated_number from ({{ dbt.generate_series(max_days) }}) as series

),

listed_days as (

    select
        cast({{ dbt.dateadd('day', 'day_numbers.generated_number - 1', 'listed_span.first_listed_date') }} as date)
            as clock_date,
        listed_span.first_order_date
    from listed_span
    cross join day_numbers
    where
        {{ dbt.dateadd('day', 'day_numbers.generated_number - 1', 'listed_span.first_listed_date') }}
        <= listed_span.as_of_date

),

reference_bounds as (

    -- [start, end] of each day's week and year a year earlier, both centred on the day 365 days before
    select
        clock_date,
        first_order_date,
        cast({{ dbt.dateadd('day', -365 - half_week, 'clock_date') }} as date) as week_start_date,
        cast({{ dbt.dateadd('day', -365 + half_week, 'clock_date') }} as date) as week_end_date,
        cast({{ dbt.dateadd('day', -365 - half_year, 'clock_date') }} as date) as year_start_date,
        cast({{ dbt.dateadd('day', -365 + half_year, 'clock_date') }} as date) as year_end_date
    from listed_days

),

reference_orders as (

    select
        reference_bounds.clock_date,
        (reference_bounds.year_start_date >= reference_bounds.first_order_date) as has_full_reference_year,
        coalesce(sum(
            case
                when
                    daily_orders.order_date >= reference_bounds.week_start_date
                    and daily_orders.order_date <= reference_bounds.week_end_date
                    then daily_orders.order_count
            end
        ), 0) as last_year_week_orders,
        coalesce(sum(daily_orders.order_count), 0) as reference_year_orders
    from reference_bounds
    left join daily_orders
        on
            reference_bounds.year_start_date <= daily_orders.order_date
            and reference_bounds.year_end_date >= daily_orders.order_date
    group by reference_bounds.clock_date, reference_bounds.year_start_date, reference_bounds.first_order_date

),

indexed_days as (

    select
        reference_orders.clock_date,
        coalesce(daily_orders.order_count, 0) as order_count,
        reference_orders.last_year_week_orders,
        reference_orders.reference_year_orders,
        (
            reference_orders.has_full_reference_year
            and reference_orders.reference_year_orders
            >= {{ var('ml_seasonal_min_reference_orders', 1000) | int }}
        ) as has_seasonal_history
    from reference_orders
    left join daily_orders
        on reference_orders.clock_date = daily_orders.order_date

),

indexed as (

    select
        clock_date,
        order_count,
        last_year_week_orders,
        reference_year_orders,
        has_seasonal_history,
        case
            when has_seasonal_history
                then
                    (last_year_week_orders * {{ 2 * half_year + 1 }}.0)
                    / (reference_year_orders * {{ 2 * half_week + 1 }}.0)
            else 1.0
        end as seasonal_index
    from indexed_days

)

select
    cast(clock_date as date) as clock_date,
    cast(order_count as {{ dbt.type_int() }}) as order_count,
    cast(last_year_week_orders as {{ dbt.type_int() }}) as last_year_week_orders,
    cast(reference_year_orders as {{ dbt.type_int() }}) as reference_year_orders,
    has_seasonal_history,
    cast(seasonal_index as {{ type_double() }}) as seasonal_index,
    cast(
        coalesce(sum(seasonal_index) over (
            order by clock_date rows between unbounded preceding and 1 preceding
        ), 0) as {{ type_double() }}
    ) as seasonal_clock
from indexed
