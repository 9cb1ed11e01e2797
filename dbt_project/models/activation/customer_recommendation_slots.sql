-- Three filled recommendation slots per person, for the esp_audience payload. A slot takes, in order:
-- the person's own recommendations (marts.product_recommendations, scoring at least
-- var recommendation_min_score), then the best sellers of the person's top category, then the overall
-- best sellers (completed-order quantity in the var best_seller_days days ending with the as-of date,
-- ties to the smaller product_id). Only active catalogue products with a name, url and image can fill a
-- slot and no product appears twice, so the payload never has an empty or broken slot.
with persons as (

    select
        person_id,
        top_category
    from {{ ref('customer_360') }}

),

clock as (

    select
        {{ as_of_window_start_at('as_of_date', var('best_seller_days', 90) | int) }} as window_start_at,
        {{ as_of_end_at('as_of_date') }} as as_of_end_at
    from {{ ref('stg_data_clock') }}

),

products as (

    -- Products that can be shown in an email.
    select
        product_id,
        product_name,
        product_url,
        image_url,
        category
    from {{ ref('stg_shop__products') }}
    where
        is_active
        and product_name is not null
        and product_url is not null
        and image_url is not null

),

recent_quantities as (

    select
        order_lines.product_id,
        sum(order_lines.quantity) as quantity
    from {{ ref('stg_shop__orders') }} as orders
    inner join {{ ref('stg_shop__order_lines') }} as order_lines
        on orders.order_id = order_lines.order_id
    cross join clock
    where
        orders.is_completed
        and orders.created_at >= clock.window_start_at
        and orders.created_at < clock.as_of_end_at
    group by order_lines.product_id

),

best_sellers_ranked as (

    select
        products.product_id,
        products.category,
        row_number() over (
            order by coalesce(recent_quantities.quantity, 0) desc, products.product_id asc
        ) as overall_rank,
        row_number() over (
            partition by products.category
            order by coalesce(recent_quantities.quantity, 0) desc, products.product_id asc
        ) as category_rank
    from products
    left join recent_quantities
        on products.product_id = recent_quantities.product_id

),

recommendations as (

    -- The person's own recommendations that are confident enough (score at or above the var).
    select
        person_id,
        product_id,
        recommendation_rank,
        method
    from {{ ref('product_recommendations') }}
    where score >= {{ var('recommendation_min_score', 0) }}

),

candidates as (

    -- Up to three candidates from each source; fill_priority orders the sources.
    select
        recommendations.person_id,
        recommendations.product_id,
        1 as fill_priority,
        recommendations.recommendation_rank as source_rank,
        {{ dbt.concat(["'recommendation:'", 'recommendations.method']) }} as slot_source
    from recommendations

    union all

    select
        persons.person_id,
        best_sellers_ranked.product_id,
        3 as fill_priority,
        best_sellers_ranked.overall_rank as source_rank,
        'best_seller' as slot_source
    from persons
    cross join best_sellers_ranked
    where best_sellers_ranked.overall_rank <= 3

    union all

    select
        persons.person_id,
        best_sellers_ranked.product_id,
        2 as fill_priority,
        best_sellers_ranked.category_rank as source_rank,
        'category_best_seller' as slot_source
    from persons
    inner join best_sellers_ranked
        on persons.top_category = best_sellers_ranked.category
    where best_sellers_ranked.category_rank <= 3

),

candidates_ranked as (

    select
        candidates.*,
        -- A product offered by several sources keeps its best one.
        row_number() over (
            partition by candidates.person_id, candidates.product_id
            order by candidates.fill_priority, candidates.source_rank
        ) as duplicate_rank
    from candidates
    inner join products
        on candidates.product_id = products.product_id

),

slots as (

    select
        person_id,
        product_id,
        slot_source,
        row_number() over (
            partition by person_id
            order by fill_priority, source_rank, product_id
        ) as slot
    from candidates_ranked
    where duplicate_rank = 1

)

select
    slots.person_id,
    cast(slots.slot as {{ dbt.type_int() }}) as slot,
    slots.product_id,
    products.product_name,
    products.product_url,
    products.image_url,
    slots.slot_source
from slots
inner join products
    on slots.product_id = products.product_id
where slots.slot <= 3
