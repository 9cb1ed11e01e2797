-- One row per person (persons) as of stg_data_clock.as_of_date: best-known profile, email consent,
-- order facts, product affinity, web behaviour, email engagement and lifecycle stage. Orders, consent
-- changes, privacy requests, web and ESP events count only when they happened at or before the end of the
-- as-of date.
with persons as (

    select person_id from {{ ref('persons') }}

),

clock as (

    select
        as_of_date,
        {{ as_of_end_at('as_of_date') }} as as_of_end_at,
        {{ as_of_window_start_at('as_of_date', 7) }} as window_7d_start_at,
        {{ as_of_window_start_at('as_of_date', var('open_cart_days', 7) | int) }} as open_cart_window_start_at,
        {{ as_of_window_start_at('as_of_date', 30) }} as window_30d_start_at,
        {{ as_of_window_start_at('as_of_date', 90) }} as window_90d_start_at
    from {{ ref('stg_data_clock') }}

),

identity_map as (

    select * from {{ ref('int_identity_map') }}

),

person_emails as (

    select
        identifier as email,
        person_id
    from identity_map
    where identifier_type = 'email'

),

-- profile -------------------------------------------------------------------------------------------

crm_records_ranked as (

    select
        identity_map.person_id,
        crm.*,
        row_number() over (
            partition by identity_map.person_id
            order by crm.valid_from_at desc, crm.customer_id desc
        ) as recency_rank
    from {{ ref('stg_crm__customer_versions') }} as crm
    inner join identity_map
        on
            identity_map.identifier_type = 'crm_customer_id'
            and crm.customer_id = identity_map.identifier
    cross join clock
    -- Each record as it stood at the end of the as-of date.
    where {{ is_version_current_at('crm', 'clock.as_of_date') }}

),

latest_crm_records as (

    select * from crm_records_ranked
    where recency_rank = 1

),

person_orders as (

    {{ person_orders_as_of() }}

),

-- The email of the person's latest order that has one.
latest_order_emails as (

    {{ latest_per_partition(
        'person_orders', ['person_id'], ['ordered_at', 'order_id'], ['email'], 'email is not null'
    ) }}

),

identity_emails as (

    -- Last resort: the person's alphabetically first email in the identity graph (e.g. an ESP contact).
    select
        person_id,
        min(email) as email
    from person_emails
    group by person_id

),

profiles as (

    select
        persons.person_id,
        latest_crm_records.customer_id as crm_customer_id,
        coalesce(latest_crm_records.email, latest_order_emails.email, identity_emails.email) as email,
        case
            when latest_crm_records.email is not null then 'crm'
            when latest_order_emails.email is not null then 'order'
            when identity_emails.email is not null then 'identity_graph'
        end as email_source,
        latest_crm_records.first_name,
        latest_crm_records.last_name,
        latest_crm_records.phone,
        latest_crm_records.birth_date,
        latest_crm_records.gender,
        latest_crm_records.country_code,
        latest_crm_records.city,
        latest_crm_records.postal_code
    from persons
    left join latest_crm_records
        on persons.person_id = latest_crm_records.person_id
    left join latest_order_emails
        on persons.person_id = latest_order_emails.person_id
    left join identity_emails
        on persons.person_id = identity_emails.person_id

),

-- consent -------------------------------------------------------------------------------------------

latest_email_consent as (

    -- The latest email-channel change over all of the person's emails; an opt-out wins a timestamp tie.
    {{ person_email_consent('clock') }}

),

erasures as (

    select distinct person_emails.person_id
    from {{ ref('stg_privacy__requests') }} as requests
    inner join person_emails
        on requests.email = person_emails.email
    cross join clock
    where
        requests.is_erasure
        and requests.requested_at < clock.as_of_end_at

),

-- email engagement ----------------------------------------------------------------------------------

esp_events as (

    {{ person_esp_events('clock') }}

),

hard_bounced_emails as (

    select distinct email
    from esp_events
    where
        event_type = 'bounce'
        and bounce_type = 'hard'

),

engagement as (

    {{ person_email_engagement('esp_events') }}

),

-- orders --------------------------------------------------------------------------------------------

order_facts as (

    {{ person_order_facts('person_orders') }}

),

-- product affinity ----------------------------------------------------------------------------------

product_lines as (

    -- Lines of completed orders of known catalogue products, with the product's category.
    select
        person_orders.person_id,
        person_orders.order_id,
        person_orders.ordered_at,
        order_lines.order_line_id,
        order_lines.product_id,
        order_lines.quantity,
        products.category
    from person_orders
    inner join {{ ref('stg_shop__order_lines') }} as order_lines
        on person_orders.order_id = order_lines.order_id
    inner join {{ ref('stg_shop__products') }} as products
        on order_lines.product_id = products.product_id
    where person_orders.is_completed

),

category_quantities_ranked as (

    select
        person_id,
        category,
        row_number() over (
            partition by person_id
            order by sum(quantity) desc, category asc
        ) as quantity_rank
    from product_lines
    where category is not null
    group by person_id, category

),

top_categories as (

    select
        person_id,
        category as top_category
    from category_quantities_ranked
    where quantity_rank = 1

),

last_purchased_products as (

    {{ latest_per_partition(
        'product_lines', ['person_id'], ['ordered_at', 'order_id', 'order_line_id'], ['product_id']
    ) }}

),

-- web behaviour -------------------------------------------------------------------------------------

web_sessions as (

    {{ person_web_sessions('clock') }}

),

product_events as (

    -- Human (not bot) product events about known catalogue products, at or before the as-of date.
    {{ person_product_events('clock') }}

),

product_view_counts as (

    {{ person_product_event_counts('product_events') }}

),

last_viewed_products as (

    {{ latest_per_partition(
        'product_events', ['person_id'], ['event_at', 'event_id'], ['product_id'], "event_type = 'product_view'"
    ) }}

),

open_cart_products as (

    -- Distinct products added to cart in the open-cart window with no completed order by the person
    -- placed after the add (and at or before the as-of date).
    select distinct
        product_events.person_id,
        product_events.product_id
    from product_events
    cross join clock
    where
        product_events.event_type = 'add_to_cart'
        and product_events.event_at >= clock.open_cart_window_start_at
        and not exists (
            select 1
            from person_orders
            where
                person_orders.person_id = product_events.person_id
                and person_orders.is_completed
                and person_orders.ordered_at > product_events.event_at
        )

),

open_carts as (

    select
        open_cart_products.person_id,
        sum(products.price_reporting) as open_cart_value
    from open_cart_products
    inner join {{ ref('stg_shop__products') }} as products
        on open_cart_products.product_id = products.product_id
    group by open_cart_products.person_id

),

-- assembly ------------------------------------------------------------------------------------------

consent_state as (

    select
        profiles.person_id,
        latest_email_consent.status as email_consent_status,
        latest_email_consent.event_at as email_consent_changed_at,
        erasures.person_id is not null as is_erased,
        hard_bounced_emails.email is not null as is_hard_bounced,
        case
            when profiles.email is null then 'no_email'
            when latest_email_consent.status = 'opted_out' then 'opted_out'
            when erasures.person_id is not null then 'erased'
            when hard_bounced_emails.email is not null then 'hard_bounced'
            when latest_email_consent.status is null then 'no_consent_record'
        end as cannot_email_reason
    from profiles
    left join latest_email_consent
        on profiles.person_id = latest_email_consent.person_id
    left join erasures
        on profiles.person_id = erasures.person_id
    left join hard_bounced_emails
        on profiles.email = hard_bounced_emails.email

)

select
    profiles.person_id,
    clock.as_of_date,
    profiles.crm_customer_id,
    profiles.email,
    profiles.email_source,
    profiles.first_name,
    profiles.last_name,
    profiles.phone,
    profiles.birth_date,
    profiles.gender,
    profiles.country_code,
    profiles.city,
    profiles.postal_code,
    consent_state.cannot_email_reason is null as can_email,
    consent_state.cannot_email_reason,
    consent_state.email_consent_status,
    consent_state.email_consent_changed_at,
    consent_state.is_erased,
    cast(order_facts.first_order_at as {{ dbt.type_timestamp() }}) as first_order_at,
    cast(order_facts.last_order_at as {{ dbt.type_timestamp() }}) as last_order_at,
    cast(coalesce(order_facts.order_count, 0) as {{ dbt.type_bigint() }}) as order_count,
    cast(coalesce(order_facts.net_revenue, 0) as {{ dbt.type_numeric() }}) as net_revenue,
    cast(
        case when order_facts.order_count > 0 then order_facts.net_revenue / order_facts.order_count end
        as {{ dbt.type_numeric() }}
    ) as aov,
    cast(coalesce(order_facts.refunded_order_count, 0) as {{ dbt.type_bigint() }}) as refunded_order_count,
    cast(coalesce(engagement.email_sends_30d, 0) as {{ dbt.type_bigint() }}) as email_sends_30d,
    cast(coalesce(engagement.email_sends_90d, 0) as {{ dbt.type_bigint() }}) as email_sends_90d,
    cast(coalesce(engagement.email_human_opens_30d, 0) as {{ dbt.type_bigint() }}) as email_human_opens_30d,
    cast(coalesce(engagement.email_human_opens_90d, 0) as {{ dbt.type_bigint() }}) as email_human_opens_90d,
    cast(coalesce(engagement.email_clicks_30d, 0) as {{ dbt.type_bigint() }}) as email_clicks_30d,
    cast(coalesce(engagement.email_clicks_90d, 0) as {{ dbt.type_bigint() }}) as email_clicks_90d,
    cast(
        case
            when engagement.engaged_campaigns_30d > 0
                then 1.0 * engagement.clicked_campaigns_30d / engagement.engaged_campaigns_30d
        end
        as {{ dbt.type_numeric() }}
    ) as email_click_to_open_rate_30d,
    cast(
        case
            when engagement.engaged_campaigns_90d > 0
                then 1.0 * engagement.clicked_campaigns_90d / engagement.engaged_campaigns_90d
        end
        as {{ dbt.type_numeric() }}
    ) as email_click_to_open_rate_90d,
    cast(engagement.last_email_engagement_at as {{ dbt.type_timestamp() }}) as last_email_engagement_at,
    consent_state.is_hard_bounced,
    top_categories.top_category,
    last_purchased_products.product_id as last_purchased_product_id,
    cast(coalesce(web_sessions.sessions_7d, 0) as {{ dbt.type_bigint() }}) as sessions_7d,
    cast(coalesce(web_sessions.sessions_30d, 0) as {{ dbt.type_bigint() }}) as sessions_30d,
    cast(coalesce(web_sessions.sessions_90d, 0) as {{ dbt.type_bigint() }}) as sessions_90d,
    cast(coalesce(product_view_counts.product_views_7d, 0) as {{ dbt.type_bigint() }}) as product_views_7d,
    cast(coalesce(product_view_counts.product_views_30d, 0) as {{ dbt.type_bigint() }}) as product_views_30d,
    cast(coalesce(product_view_counts.product_views_90d, 0) as {{ dbt.type_bigint() }}) as product_views_90d,
    last_viewed_products.product_id as last_viewed_product_id,
    cast(coalesce(open_carts.open_cart_value, 0) as {{ dbt.type_numeric() }}) as open_cart_value,
    {{ lifecycle_stage(
        'order_facts.order_count',
        dbt.datediff('cast(order_facts.first_order_at as date)', 'clock.as_of_date', 'day'),
        dbt.datediff('cast(order_facts.last_order_at as date)', 'clock.as_of_date', 'day')
    ) }} as lifecycle_stage
from profiles
cross join clock
inner join consent_state
    on profiles.person_id = consent_state.person_id
left join order_facts
    on profiles.person_id = order_facts.person_id
left join engagement
    on profiles.person_id = engagement.person_id
left join top_categories
    on profiles.person_id = top_categories.person_id
left join last_purchased_products
    on profiles.person_id = last_purchased_products.person_id
left join web_sessions
    on profiles.person_id = web_sessions.person_id
left join product_view_counts
    on profiles.person_id = product_view_counts.person_id
left join last_viewed_products
    on profiles.person_id = last_viewed_products.person_id
left join open_carts
    on profiles.person_id = open_carts.person_id
