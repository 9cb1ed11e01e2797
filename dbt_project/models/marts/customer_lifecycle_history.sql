-- One row per person and month-end: the person's lifecycle stage as it stood at the end of each month from
-- the month of the first completed order in the data up to the as-of date (stg_data_clock.as_of_date),
-- with the previous month-end's stage so stage changes can be counted. The stage rule is the same macro
-- customer_360 uses (lifecycle_stage), evaluated with each month-end as the as-of date.
with clock as (

    select as_of_date from {{ ref('stg_data_clock') }}

),

person_orders as (

    {{ person_orders_as_of() }}

),

completed_orders as (

    select
        person_id,
        order_id,
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
        cast(
            {{ dbt.dateadd(
                'day', -1,
                dbt.dateadd('month', 'month_offsets.month_offset + 1', 'first_month.first_month_start_date')
            ) }} as date
        ) as month_end_date,
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

person_month_ends as (

    select
        persons.person_id,
        month_ends_to_date.month_end_date,
        month_ends_to_date.as_of_date
    from {{ ref('persons') }} as persons
    cross join month_ends_to_date

),

order_facts_by_month_end as (

    select
        person_month_ends.person_id,
        person_month_ends.month_end_date,
        count(*) as order_count,
        min(completed_orders.purchase_date) as first_purchase_date,
        max(completed_orders.purchase_date) as last_purchase_date
    from person_month_ends
    inner join completed_orders
        on
            person_month_ends.person_id = completed_orders.person_id
            and person_month_ends.month_end_date >= completed_orders.purchase_date
    group by person_month_ends.person_id, person_month_ends.month_end_date

),

stages as (

    select
        person_month_ends.person_id,
        person_month_ends.month_end_date,
        person_month_ends.as_of_date,
        coalesce(order_facts_by_month_end.order_count, 0) as order_count,
        {{ lifecycle_stage(
            'order_facts_by_month_end.order_count',
            dbt.datediff('order_facts_by_month_end.first_purchase_date', 'person_month_ends.month_end_date', 'day'),
            dbt.datediff('order_facts_by_month_end.last_purchase_date', 'person_month_ends.month_end_date', 'day')
        ) }} as lifecycle_stage
    from person_month_ends
    left join order_facts_by_month_end
        on
            person_month_ends.person_id = order_facts_by_month_end.person_id
            and person_month_ends.month_end_date = order_facts_by_month_end.month_end_date

),

stages_with_previous as (

    select
        *,
        lag(lifecycle_stage) over (partition by person_id order by month_end_date) as previous_lifecycle_stage
    from stages

)

select
    cast({{ surrogate_key(['person_id', 'month_end_date']) }} as {{ dbt.type_string() }}) as person_month_id,
    person_id,
    cast(month_end_date as date) as month_end_date,
    cast(as_of_date as date) as as_of_date,
    cast(order_count as {{ dbt.type_bigint() }}) as order_count,
    lifecycle_stage,
    previous_lifecycle_stage,
    coalesce(previous_lifecycle_stage <> lifecycle_stage, false) as is_stage_change
from stages_with_previous
