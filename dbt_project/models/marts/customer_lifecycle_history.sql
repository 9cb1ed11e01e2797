-- One row per person and month-end: the person's lifecycle stage as it stood at the end of each month from
-- the month of the first completed order in the data up to the as-of date (stg_data_clock.as_of_date),
-- with the previous month-end's stage so stage changes can be counted. The stage rule is the same macro
-- customer_360 uses (lifecycle_stage), evaluated with each month-end as the as-of date.
--
-- A person's order facts (completed order count, last purchase day) only change in months with an order, so
-- the history is built from intervals of months with constant facts (one per person before their first
-- order, one per month with orders) expanded to month-ends, instead of joining every person-month to every
-- earlier order and windowing over the whole person x month grid.
with clock as (

    select as_of_date from {{ ref('stg_data_clock') }}

),

persons as (

    select person_id from {{ ref('persons') }}

),

person_orders as (

    {{ person_orders_as_of() }}

),

completed_orders as (

    select
        person_id,
        purchase_date
    from person_orders
    where is_completed

),

month_offsets as (

    -- 0-999 months, far more than any order history.
    select series.generated_number - 1 as month_offset
    from ({{ dbt.generate_series(1000) }}) as series

),

first_month as (

    select cast({{ dbt.date_trunc('month', 'min(purchase_date)') }} as date) as first_month_start_date
    from completed_orders

),

month_ends as (

    select
        month_offsets.month_offset,
        cast(
            {{ dbt.dateadd(
                'day', -1,
                dbt.dateadd('month', 'month_offsets.month_offset + 1', 'first_month.first_month_start_date')
            ) }} as date
        ) as month_end_date,
        -- The month-end before, i.e. the day before the month starts; only read when month_offset > 0.
        cast(
            {{ dbt.dateadd(
                'day', -1,
                dbt.dateadd('month', 'month_offsets.month_offset', 'first_month.first_month_start_date')
            ) }} as date
        ) as previous_month_end_date,
        clock.as_of_date
    from month_offsets
    cross join first_month
    cross join clock
    where first_month.first_month_start_date is not null

),

month_ends_to_date as (

    select * from month_ends
    where month_end_date <= as_of_date

),

last_month as (

    select max(month_offset) as last_month_offset
    from month_ends_to_date

),

person_order_months as (

    -- Completed orders per person and calendar month (as a month offset from the first month of the data).
    select
        completed_orders.person_id,
        {{ dbt.datediff('first_month.first_month_start_date', 'completed_orders.purchase_date', 'month') }}
            as month_offset,
        count(*) as order_count,
        min(completed_orders.purchase_date) as first_purchase_date,
        max(completed_orders.purchase_date) as last_purchase_date
    from completed_orders
    cross join first_month
    group by
        completed_orders.person_id,
        {{ dbt.datediff('first_month.first_month_start_date', 'completed_orders.purchase_date', 'month') }}

),

order_month_intervals as (

    -- From each month with orders up to the month before the person's next month with orders: the order
    -- count and last purchase day to date, and those of the month-end just before the interval starts.
    select
        person_id,
        month_offset as start_month_offset,
        lead(month_offset) over (partition by person_id order by month_offset) - 1 as next_end_month_offset,
        sum(order_count) over (
            partition by person_id order by month_offset rows between unbounded preceding and current row
        ) as order_count,
        first_purchase_date,
        -- Months are in order, so the latest purchase to date is this month's latest.
        last_purchase_date,
        coalesce(
            sum(order_count) over (
                partition by person_id order by month_offset rows between unbounded preceding and 1 preceding
            ),
            0
        ) as previous_order_count,
        lag(last_purchase_date) over (partition by person_id order by month_offset) as previous_last_purchase_date
    from person_order_months

),

person_first_orders as (

    select
        person_id,
        min(start_month_offset) as first_order_month_offset,
        min(first_purchase_date) as first_purchase_date
    from order_month_intervals
    group by person_id

),

intervals as (

    -- Before the first order (or throughout, for a person who never ordered): a prospect.
    select
        persons.person_id,
        0 as start_month_offset,
        coalesce(person_first_orders.first_order_month_offset - 1, last_month.last_month_offset)
            as end_month_offset,
        0 as order_count,
        cast(null as date) as last_purchase_date,
        0 as previous_order_count,
        cast(null as date) as previous_last_purchase_date,
        cast(null as date) as first_purchase_date
    from persons
    cross join last_month
    left join person_first_orders
        on persons.person_id = person_first_orders.person_id

    union all

    select
        order_month_intervals.person_id,
        order_month_intervals.start_month_offset,
        coalesce(order_month_intervals.next_end_month_offset, last_month.last_month_offset) as end_month_offset,
        order_month_intervals.order_count,
        order_month_intervals.last_purchase_date,
        order_month_intervals.previous_order_count,
        order_month_intervals.previous_last_purchase_date,
        person_first_orders.first_purchase_date
    from order_month_intervals
    cross join last_month
    inner join person_first_orders
        on order_month_intervals.person_id = person_first_orders.person_id
    inner join persons
        on order_month_intervals.person_id = persons.person_id

),

person_month_ends as (

    select
        intervals.person_id,
        month_ends_to_date.month_offset,
        month_ends_to_date.month_end_date,
        month_ends_to_date.previous_month_end_date,
        month_ends_to_date.as_of_date,
        intervals.order_count,
        intervals.first_purchase_date,
        -- The month-end before is in the same interval unless this month starts it.
        case
            when month_ends_to_date.month_offset = intervals.start_month_offset
                then intervals.previous_order_count
            else intervals.order_count
        end as previous_order_count,
        intervals.last_purchase_date,
        case
            when month_ends_to_date.month_offset = intervals.start_month_offset
                then intervals.previous_last_purchase_date
            else intervals.last_purchase_date
        end as previous_last_purchase_date
    from intervals
    inner join month_ends_to_date
        on
            intervals.start_month_offset <= month_ends_to_date.month_offset
            and intervals.end_month_offset >= month_ends_to_date.month_offset

),

stages as (

    select
        person_id,
        month_end_date,
        as_of_date,
        order_count,
        {{ lifecycle_stage(
            'order_count',
            dbt.datediff('first_purchase_date', 'month_end_date', 'day'),
            dbt.datediff('last_purchase_date', 'month_end_date', 'day')
        ) }} as lifecycle_stage,
        case
            when month_offset > 0 then {{ lifecycle_stage(
                'previous_order_count',
                dbt.datediff('first_purchase_date', 'previous_month_end_date', 'day'),
                dbt.datediff('previous_last_purchase_date', 'previous_month_end_date', 'day')
            ) }}
        end as previous_lifecycle_stage
    from person_month_ends

)

select
    -- A readable key (person id, then the month as yyyymm) rather than a hash: a hash of every person-month
    -- was the dearest expression of the model, and the narrower key is cheaper to store and test unique.
    cast(
        {{ dbt.concat([
            'person_id',
            "'-'",
            'cast(extract(year from month_end_date) * 100 + extract(month from month_end_date) as '
                ~ dbt.type_string() ~ ')',
        ]) }} as {{ dbt.type_string() }}
    ) as person_month_id,
    person_id,
    cast(month_end_date as date) as month_end_date,
    cast(as_of_date as date) as as_of_date,
    cast(order_count as {{ dbt.type_bigint() }}) as order_count,
    lifecycle_stage,
    previous_lifecycle_stage,
    coalesce(previous_lifecycle_stage <> lifecycle_stage, false) as is_stage_change
from stages
