{#-
    person_orders_as_of(): one row per clean order (stg_shop__orders) placed at or before the end of the
    as-of date (stg_data_clock.as_of_date), attributed to a person through int_identity_map: the shop
    account (identifier_type shop_customer_id) when there is one, else the order email (guest checkout,
    identifier_type email). Test orders never reach stg_shop__orders (quarantined as test_order).

    Columns: order_id, person_id, status, is_completed (placed, paid or shipped: a purchase), is_refunded,
    email, net_revenue_reporting, ordered_at, purchase_date (UTC date of ordered_at), as_of_date.

    Shared by customer_rfm and customer_360 so both marts count exactly the same orders. Renders a plain
    select, to be used as the body of a CTE.
-#}
{% macro person_orders_as_of() -%}
    select
        orders.order_id,
        coalesce(shop_accounts.person_id, order_emails.person_id) as person_id,
        orders.status,
        orders.is_completed,
        orders.status = 'refunded' as is_refunded,
        orders.email,
        orders.net_revenue_reporting,
        orders.created_at as ordered_at,
        cast(orders.created_at as date) as purchase_date,
        clock.as_of_date
    from {{ ref('stg_shop__orders') }} as orders
    cross join {{ ref('stg_data_clock') }} as clock
    left join {{ ref('int_identity_map') }} as shop_accounts
        on shop_accounts.identifier_type = 'shop_customer_id'
        and shop_accounts.identifier = orders.customer_id
    left join {{ ref('int_identity_map') }} as order_emails
        on order_emails.identifier_type = 'email'
        and order_emails.identifier = orders.email
    where orders.created_at < {{ as_of_end_at('clock.as_of_date') }}
        and coalesce(shop_accounts.person_id, order_emails.person_id) is not null
{%- endmacro %}
