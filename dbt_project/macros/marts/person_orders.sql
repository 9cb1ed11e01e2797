{#-
    person_orders_as_of(cutoffs): one row per (order, cutoff) for every clean order placed before the end of
    the cutoff date, with the status, amounts, account and email of the order version that was current at
    the end of that date (stg_shop__order_versions: the latest version with updated_at at or before it), so
    a refund or cancellation written later never leaks backward. Orders are attributed to a person through
    int_identity_map: the shop account (identifier_type shop_customer_id) when there is one, else the order
    email (guest checkout, identifier_type email). Test orders never reach staging (quarantined).

    `cutoffs` is SQL for a relation with one row per cutoff in a column `as_of_date` (a CTE name, or
    `ref(...)`); by default the single as-of date of stg_data_clock, which is what the marts use. The ML
    training sets pass many cutoffs, so marts and models share one definition of "the orders as of D".

    Columns: order_id, person_id, status, is_completed (placed, paid or shipped: a purchase), is_refunded,
    email, net_revenue_reporting, ordered_at, purchase_date (UTC date of ordered_at), as_of_date (the
    cutoff). Renders a plain select, to be used as the body of a CTE.
-#}
{% macro person_orders_as_of(cutoffs=none) -%}
    {%- set cutoffs_relation = cutoffs if cutoffs is not none else ref('stg_data_clock') -%}
    select
        versions.order_id,
        versions.person_id,
        versions.status,
        versions.is_completed,
        versions.status = 'refunded' as is_refunded,
        versions.email,
        versions.net_revenue_reporting,
        versions.created_at as ordered_at,
        cast(versions.created_at as date) as purchase_date,
        cutoffs.as_of_date
    from {% call materialized_subquery('person_order_versions') %}
        select
            order_versions.order_id,
            coalesce(shop_accounts.person_id, order_emails.person_id) as person_id,
            order_versions.status,
            order_versions.is_completed,
            order_versions.email,
            order_versions.net_revenue_reporting,
            order_versions.created_at,
            order_versions.valid_from_at,
            order_versions.valid_to_at
        from {{ ref('stg_shop__order_versions') }} as order_versions
        left join {{ ref('int_identity_map') }} as shop_accounts
            on
                shop_accounts.identifier_type = 'shop_customer_id'
                and order_versions.customer_id = shop_accounts.identifier
        left join {{ ref('int_identity_map') }} as order_emails
            on
                order_emails.identifier_type = 'email'
                and order_versions.email = order_emails.identifier
        where coalesce(shop_accounts.person_id, order_emails.person_id) is not null
    {% endcall %} as versions
    inner join {{ cutoffs_relation }} as cutoffs
        on
            versions.created_at < {{ as_of_end_at('cutoffs.as_of_date') }}
            and {{ is_version_current_at('versions', 'cutoffs.as_of_date') }}
{%- endmacro %}
