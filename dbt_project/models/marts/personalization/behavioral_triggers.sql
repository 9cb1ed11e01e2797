-- One row per person and trigger that fires as of stg_data_clock.as_of_date ("now" is the end of that day):
-- cart_abandoned, browse_abandoned, winback and post_purchase_cross_sell. Each row says when the trigger
-- fired and carries a JSON payload for the email (product ids, cart value, ...). Only human (not bot) web
-- events of known catalogue products and completed orders count. Windows and thresholds are dbt vars.
with clock as (

    select
        as_of_date,
        {{ as_of_end_at('as_of_date') }} as as_of_end_at,
        {{ dbt.dateadd(
            'hour', -1 * var('cart_abandoned_hours', 4) | int, as_of_end_at('as_of_date')
        ) }} as cart_abandoned_by_at,
        {{ as_of_window_start_at('as_of_date', var('cart_abandoned_lookback_days', 7) | int) }}
            as cart_window_start_at,
        {{ dbt.dateadd(
            'hour', -1 * var('browse_abandoned_hours', 24) | int, as_of_end_at('as_of_date')
        ) }} as browse_window_start_at
    from {{ ref('stg_data_clock') }}

),

person_devices as (

    select
        identifier as anonymous_id,
        person_id
    from {{ ref('int_identity_map') }}
    where identifier_type = 'anonymous_id'

),

products as (

    select
        product_id,
        price_reporting
    from {{ ref('stg_shop__products') }}

),

person_orders as (

    {{ person_orders_as_of() }}

),

completed_orders as (

    select
        person_id,
        order_id,
        ordered_at,
        purchase_date
    from person_orders
    where is_completed

),

purchased_products as (

    select
        completed_orders.person_id,
        completed_orders.order_id,
        completed_orders.ordered_at,
        completed_orders.purchase_date,
        order_lines.product_id
    from completed_orders
    inner join {{ ref('stg_shop__order_lines') }} as order_lines
        on completed_orders.order_id = order_lines.order_id

),

recent_product_events as (

    -- Human product views and add-to-carts of catalogue products in the longest trigger window.
    select
        person_devices.person_id,
        web_events.event_type,
        web_events.product_id,
        web_events.event_at
    from {{ ref('stg_web__events') }} as web_events
    inner join person_devices
        on web_events.anonymous_id = person_devices.anonymous_id
    cross join clock
    where
        not web_events.is_bot
        and not web_events.is_unknown_product
        and web_events.product_id is not null
        and web_events.event_type in ('product_view', 'add_to_cart')
        and web_events.event_at < clock.as_of_end_at
        and (
            web_events.event_at >= clock.cart_window_start_at
            or web_events.event_at >= clock.browse_window_start_at
        )

),

-- cart_abandoned ------------------------------------------------------------------------------------

open_cart_adds as (

    -- Add-to-carts of the cart window not followed by a completed order of the person (by the as-of date).
    select
        recent_product_events.person_id,
        recent_product_events.product_id,
        recent_product_events.event_at as added_at
    from recent_product_events
    cross join clock
    where
        recent_product_events.event_type = 'add_to_cart'
        and recent_product_events.event_at >= clock.cart_window_start_at
        and not exists (
            select 1
            from completed_orders
            where
                completed_orders.person_id = recent_product_events.person_id
                and completed_orders.ordered_at > recent_product_events.event_at
        )

),

open_cart_products as (

    select
        open_cart_adds.person_id,
        open_cart_adds.product_id,
        max(open_cart_adds.added_at) as last_added_at,
        max(products.price_reporting) as price_reporting
    from open_cart_adds
    inner join products
        on open_cart_adds.product_id = products.product_id
    group by open_cart_adds.person_id, open_cart_adds.product_id

),

open_carts as (

    select
        person_id,
        max(last_added_at) as last_added_at,
        sum(price_reporting) as cart_value,
        {{ json_string_array_agg('product_id', 'order by product_id') }} as product_ids_json
    from open_cart_products
    group by person_id

),

abandoned_carts as (

    -- The cart is abandoned once its latest add is at least N hours old with no order since, and it is
    -- worth at least the threshold (a cart still being filled does not fire).
    select
        open_carts.person_id,
        'cart_abandoned' as trigger_name,
        {{ dbt.dateadd('hour', var('cart_abandoned_hours', 4) | int, 'open_carts.last_added_at') }} as fired_at,
        {{ dbt.concat([
            "'{\"product_ids\":'", "open_carts.product_ids_json",
            "',\"cart_value\":'", json_number('open_carts.cart_value'),
            "'}'",
        ]) }} as payload
    from open_carts
    cross join clock
    where
        open_carts.last_added_at <= clock.cart_abandoned_by_at
        and open_carts.cart_value >= {{ var('cart_abandoned_min_value', 50) }}

),

-- browse_abandoned ----------------------------------------------------------------------------------

browsed_products as (

    -- Products viewed in the browse window that the person has not bought since the view.
    select
        recent_product_events.person_id,
        recent_product_events.product_id,
        max(recent_product_events.event_at) as last_viewed_at
    from recent_product_events
    cross join clock
    where
        recent_product_events.event_type = 'product_view'
        and recent_product_events.event_at >= clock.browse_window_start_at
        and not exists (
            select 1
            from purchased_products
            where
                purchased_products.person_id = recent_product_events.person_id
                and purchased_products.product_id = recent_product_events.product_id
                and purchased_products.ordered_at >= recent_product_events.event_at
        )
    group by recent_product_events.person_id, recent_product_events.product_id

),

abandoned_browses as (

    select
        person_id,
        'browse_abandoned' as trigger_name,
        max(last_viewed_at) as fired_at,
        {{ dbt.concat([
            "'{\"product_ids\":'",
            json_string_array_agg('product_id', 'order by last_viewed_at desc, product_id'),
            "'}'",
        ]) }} as payload
    from browsed_products
    group by person_id

),

-- winback -------------------------------------------------------------------------------------------

current_stages as (

    select
        person_id,
        lifecycle_stage,
        last_order_at
    from {{ ref('customer_360') }}

),

previous_month_end_stages as (

    -- Each person's stage at the last month-end strictly before the as-of date.
    select
        history.person_id,
        history.lifecycle_stage
    from {{ ref('customer_lifecycle_history') }} as history
    cross join clock
    where
        history.month_end_date
        = cast({{ dbt.dateadd('day', -1, dbt.date_trunc('month', 'clock.as_of_date')) }} as date)

),

winbacks as (

    -- The person is at_risk now and was not at the previous month-end: they entered at_risk this month, on
    -- the day their last order turned `lifecycle_active_days` old (the lifecycle_stage rule).
    select
        current_stages.person_id,
        'winback' as trigger_name,
        cast({{ dbt.dateadd(
            'day', var('lifecycle_active_days', 90) | int, 'cast(current_stages.last_order_at as date)'
        ) }} as {{ dbt.type_timestamp() }}) as fired_at,
        {{ dbt.concat([
            "'{\"previous_stage\":'",
            "coalesce(" ~ json_string('previous_month_end_stages.lifecycle_stage') ~ ", 'null')",
            "',\"days_since_last_order\":'",
            "cast(" ~ dbt.datediff('cast(current_stages.last_order_at as date)', 'clock.as_of_date', 'day')
                ~ " as " ~ dbt.type_string() ~ ")",
            "'}'",
        ]) }} as payload
    from current_stages
    cross join clock
    left join previous_month_end_stages
        on current_stages.person_id = previous_month_end_stages.person_id
    where
        current_stages.lifecycle_stage = 'at_risk'
        and coalesce(previous_month_end_stages.lifecycle_stage, 'none') <> 'at_risk'

),

-- post_purchase_cross_sell --------------------------------------------------------------------------

latest_orders as (

    {{ latest_per_partition(
        'completed_orders', ['person_id'], ['ordered_at', 'order_id'], ['order_id', 'purchase_date']
    ) }}

),

cross_sell_orders as (

    -- The person's latest completed order was placed between `post_purchase_min_days` and
    -- `post_purchase_max_days` whole days before the as-of date (both ends included).
    select
        latest_orders.person_id,
        latest_orders.order_id,
        latest_orders.purchase_date
    from latest_orders
    cross join clock
    where
        {{ dbt.datediff('latest_orders.purchase_date', 'clock.as_of_date', 'day') }}
        between {{ var('post_purchase_min_days', 3) | int }} and {{ var('post_purchase_max_days', 14) | int }}

),

cross_sells as (

    select
        cross_sell_orders.person_id,
        'post_purchase_cross_sell' as trigger_name,
        cast({{ dbt.dateadd(
            'day', var('post_purchase_min_days', 3) | int, 'max(cross_sell_orders.purchase_date)'
        ) }} as {{ dbt.type_timestamp() }}) as fired_at,
        {{ dbt.concat([
            "'{\"order_id\":'", json_string('max(cross_sell_orders.order_id)'),
            "',\"product_ids\":'",
            json_string_array_agg('order_lines.product_id', 'order by order_lines.product_id'),
            "'}'",
        ]) }} as payload
    from cross_sell_orders
    left join {{ ref('stg_shop__order_lines') }} as order_lines
        on cross_sell_orders.order_id = order_lines.order_id
    group by cross_sell_orders.person_id

),

fired_triggers as (

    select * from abandoned_carts
    union all
    select * from abandoned_browses
    union all
    select * from winbacks
    union all
    select * from cross_sells

)

select
    cast({{ surrogate_key(['fired_triggers.person_id', 'fired_triggers.trigger_name']) }} as {{ dbt.type_string() }})
        as trigger_id,
    fired_triggers.person_id,
    cast(fired_triggers.trigger_name as {{ dbt.type_string() }}) as trigger_name,
    clock.as_of_date,
    cast(fired_triggers.fired_at as {{ dbt.type_timestamp() }}) as fired_at,
    cast(fired_triggers.payload as {{ dbt.type_string() }}) as payload
from fired_triggers
cross join clock
