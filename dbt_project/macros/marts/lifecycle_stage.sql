{#-
    lifecycle_stage(order_count, days_since_first_order, days_since_last_order): the customer lifecycle stage
    as a SQL case expression, shared by customer_360 and customer_lifecycle_history so both use one rule.
    Days are whole days from the UTC purchase day to the as-of day (0 = bought on the as-of day). "Within N
    days" means the N whole days ending with the as-of day, i.e. days < N, like the marts' trailing windows.
    First matching rule wins:
      prospect  no completed order;
      new       first order within var `lifecycle_new_days` (default 30);
      loyal     last order within var `lifecycle_active_days` (90) and at least var `lifecycle_loyal_orders`
                (3) completed orders;
      active    last order within `lifecycle_active_days`;
      at_risk   last order within var `lifecycle_churned_days` (365) days;
      churned   otherwise.
-#}
{% macro lifecycle_stage(order_count, days_since_first_order, days_since_last_order) -%}
    case
        when coalesce({{ order_count }}, 0) = 0 then 'prospect'
        when {{ days_since_first_order }} < {{ var('lifecycle_new_days', 30) }} then 'new'
        when {{ days_since_last_order }} < {{ var('lifecycle_active_days', 90) }}
            and {{ order_count }} >= {{ var('lifecycle_loyal_orders', 3) }} then 'loyal'
        when {{ days_since_last_order }} < {{ var('lifecycle_active_days', 90) }} then 'active'
        when {{ days_since_last_order }} < {{ var('lifecycle_churned_days', 365) }} then 'at_risk'
        else 'churned'
    end
{%- endmacro %}
