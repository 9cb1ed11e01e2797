-- Up to var `recommendation_count` (default 3) products per person, as of stg_data_clock.as_of_date, that
-- the person has not bought, with the method that produced each:
--   co_purchase       item-to-item co-purchase similarity: the cosine between two products' buyer sets over
--                     the person x product matrix of completed orders, kept for the `recommendation_neighbours`
--                     most similar products of each product with at least `recommendation_min_co_buyers`
--                     shared buyers (so the work grows with people x K, not people x items^2). The neighbours
--                     of the person's purchases are the candidates; they are ordered by
--                     (1 + summed similarity) x (person's category affinity + 0.05) x (product's share of its
--                     category's buyers), because on the generator's data the category the person prefers and
--                     the product's popularity within it predict the next purchase better than similarity alone
--                     (bench/bench_recommendations.py measures both);
--   category_popular  when co-purchase gives fewer than N products (thin data), the most popular products of
--                     the person's top category (customer_360.top_category), by share of the category's buyers;
--   popular           then the most popular products overall, by share of all buyers.
-- Only active catalogue products are recommended. Scores are comparable within a method, not across.
{%- set recommendation_count = var('recommendation_count', 3) | int %}
{#- Each fallback considers this many popular products per category (or overall) before exclusions. #}
{%- set fallback_pool_size = 5 * recommendation_count %}

with persons as (

    select person_id from {{ ref('persons') }}

),

products as (

    select
        product_id,
        category,
        is_active
    from {{ ref('stg_shop__products') }}

),

active_products as (

    select * from products
    where is_active

),

person_orders as (

    {{ person_orders_as_of() }}

),

purchased_products as (

    -- The person x product matrix: who bought which catalogue product, at least once, in a completed order.
    select distinct
        person_orders.person_id,
        order_lines.product_id
    from person_orders
    inner join {{ ref('stg_shop__order_lines') }} as order_lines
        on person_orders.order_id = order_lines.order_id
    inner join products
        on order_lines.product_id = products.product_id
    where person_orders.is_completed

),

buyer_keys as (

    -- A compact integer per buyer: pair generation, scoring and ranking join and group on it rather than on
    -- the long person_id text, which made those steps several times dearer.
    select
        person_id,
        row_number() over (order by person_id) as buyer_key
    from (select distinct person_id from purchased_products) as buyers

),

keyed_purchases as (

    select
        buyer_keys.buyer_key,
        purchased_products.product_id
    from purchased_products
    inner join buyer_keys
        on purchased_products.person_id = buyer_keys.person_id

),

product_buyer_counts as (

    select
        product_id,
        count(*) as buyer_count
    from purchased_products
    group by product_id

),

-- co_purchase ---------------------------------------------------------------------------------------

co_purchase_counts as (

    select
        bought.product_id,
        also_bought.product_id as neighbour_product_id,
        count(*) as co_buyer_count
    from keyed_purchases as bought
    inner join keyed_purchases as also_bought
        on
            bought.buyer_key = also_bought.buyer_key
            and bought.product_id <> also_bought.product_id
    group by bought.product_id, also_bought.product_id
    having count(*) >= {{ var('recommendation_min_co_buyers', 2) | int }}

),

product_similarities_ranked as (

    select
        co_purchase_counts.product_id,
        co_purchase_counts.neighbour_product_id,
        co_purchase_counts.co_buyer_count
        / sqrt(1.0 * product_buyers.buyer_count * neighbour_buyers.buyer_count) as similarity,
        row_number() over (
            partition by co_purchase_counts.product_id
            order by
                co_purchase_counts.co_buyer_count
                / sqrt(1.0 * product_buyers.buyer_count * neighbour_buyers.buyer_count) desc,
                co_purchase_counts.neighbour_product_id asc
        ) as neighbour_rank
    from co_purchase_counts
    inner join product_buyer_counts as product_buyers
        on co_purchase_counts.product_id = product_buyers.product_id
    inner join product_buyer_counts as neighbour_buyers
        on co_purchase_counts.neighbour_product_id = neighbour_buyers.product_id
    inner join active_products
        on co_purchase_counts.neighbour_product_id = active_products.product_id

),

product_neighbours as (

    select * from product_similarities_ranked
    where neighbour_rank <= {{ var('recommendation_neighbours', 5) | int }}

),

co_purchase_similarities as (

    select
        keyed_purchases.buyer_key,
        product_neighbours.neighbour_product_id as product_id,
        sum(product_neighbours.similarity) as similarity
    from keyed_purchases
    inner join product_neighbours
        on keyed_purchases.product_id = product_neighbours.product_id
    group by keyed_purchases.buyer_key, product_neighbours.neighbour_product_id

),

person_category_counts as (

    select
        keyed_purchases.buyer_key,
        products.category,
        count(*) as product_count
    from keyed_purchases
    inner join products
        on keyed_purchases.product_id = products.product_id
    group by keyed_purchases.buyer_key, products.category

),

person_category_affinities as (

    -- Share of the person's purchased products that are in the category.
    select
        buyer_key,
        category,
        1.0 * product_count / sum(product_count) over (partition by buyer_key) as affinity
    from person_category_counts

),

-- popularity --------------------------------------------------------------------------------------

person_top_categories as (

    select
        person_id,
        top_category
    from {{ ref('customer_360') }}
    where top_category is not null

),

category_buyer_counts as (

    select
        products.category,
        count(distinct purchased_products.person_id) as buyer_count
    from purchased_products
    inner join products
        on purchased_products.product_id = products.product_id
    group by products.category

),

all_buyers as (

    select count(distinct person_id) as buyer_count
    from purchased_products

),

popular_products_ranked as (

    -- Popularity = share of buyers (within the category, and overall) who bought the product.
    select
        active_products.product_id,
        active_products.category,
        1.0 * product_buyer_counts.buyer_count / category_buyer_counts.buyer_count as category_share,
        1.0 * product_buyer_counts.buyer_count / all_buyers.buyer_count as overall_share,
        row_number() over (
            partition by active_products.category
            order by product_buyer_counts.buyer_count desc, active_products.product_id asc
        ) as category_rank,
        row_number() over (
            order by product_buyer_counts.buyer_count desc, active_products.product_id asc
        ) as overall_rank
    from active_products
    inner join product_buyer_counts
        on active_products.product_id = product_buyer_counts.product_id
    inner join category_buyer_counts
        on active_products.category = category_buyer_counts.category
    cross join all_buyers

),

-- candidates --------------------------------------------------------------------------------------

co_purchase_candidates as (

    select
        co_purchase_similarities.buyer_key,
        co_purchase_similarities.product_id,
        (1 + co_purchase_similarities.similarity)
        * (coalesce(person_category_affinities.affinity, 0) + 0.05)
        * popular_products_ranked.category_share as score,
        1 as method_priority,
        -- `method` is the interface's column name (read by esp_audience); no warehouse reserves it.
        'co_purchase' as method  -- noqa: RF04
    from co_purchase_similarities
    inner join popular_products_ranked
        on co_purchase_similarities.product_id = popular_products_ranked.product_id
    left join person_category_affinities
        on
            co_purchase_similarities.buyer_key = person_category_affinities.buyer_key
            and popular_products_ranked.category = person_category_affinities.category

),

category_popular_candidates as (

    select
        person_top_categories.person_id,
        popular_products_ranked.product_id,
        popular_products_ranked.category_share as score,
        2 as method_priority,
        'category_popular' as method  -- noqa: RF04
    from person_top_categories
    inner join popular_products_ranked
        on person_top_categories.top_category = popular_products_ranked.category
    where popular_products_ranked.category_rank <= {{ fallback_pool_size }}

),

popular_candidates as (

    select
        persons.person_id,
        popular_products_ranked.product_id,
        popular_products_ranked.overall_share as score,
        3 as method_priority,
        'popular' as method  -- noqa: RF04
    from persons
    cross join popular_products_ranked
    where popular_products_ranked.overall_rank <= {{ fallback_pool_size }}

),

unbought_co_purchases_ranked as (

    select
        co_purchase_candidates.*,
        row_number() over (
            partition by co_purchase_candidates.buyer_key
            order by co_purchase_candidates.score desc, co_purchase_candidates.product_id asc
        ) as method_rank
    from co_purchase_candidates
    left join keyed_purchases
        on
            co_purchase_candidates.buyer_key = keyed_purchases.buyer_key
            and co_purchase_candidates.product_id = keyed_purchases.product_id
    where keyed_purchases.product_id is null

),

top_co_purchases as (

    -- Only a person's best N co-purchase products can be recommended, so the rest are dropped early.
    select
        buyer_keys.person_id,
        unbought_co_purchases_ranked.product_id,
        unbought_co_purchases_ranked.score,
        unbought_co_purchases_ranked.method_priority,
        unbought_co_purchases_ranked.method  -- noqa: RF04
    from unbought_co_purchases_ranked
    inner join buyer_keys
        on unbought_co_purchases_ranked.buyer_key = buyer_keys.buyer_key
    where unbought_co_purchases_ranked.method_rank <= {{ recommendation_count }}

),

co_purchase_counts_per_person as (

    select
        person_id,
        count(*) as co_purchase_count
    from top_co_purchases
    group by person_id

),

persons_needing_fallbacks as (

    -- Fallbacks rank after co-purchase, so a person with N co-purchase products never gets one: only the
    -- others get fallback candidates (most persons, at scale, are not ranked against every popular product).
    select persons.person_id
    from persons
    left join co_purchase_counts_per_person as co_purchase_counts
        on persons.person_id = co_purchase_counts.person_id
    where coalesce(co_purchase_counts.co_purchase_count, 0) < {{ recommendation_count }}

),

unbought_category_populars as (

    -- Not bought, and not already recommended by co-purchase (a product keeps its best method).
    select category_popular_candidates.*
    from category_popular_candidates
    inner join persons_needing_fallbacks
        on category_popular_candidates.person_id = persons_needing_fallbacks.person_id
    left join purchased_products
        on
            category_popular_candidates.person_id = purchased_products.person_id
            and category_popular_candidates.product_id = purchased_products.product_id
    left join top_co_purchases
        on
            category_popular_candidates.person_id = top_co_purchases.person_id
            and category_popular_candidates.product_id = top_co_purchases.product_id
    where
        purchased_products.product_id is null
        and top_co_purchases.product_id is null

),

unbought_populars as (

    select popular_candidates.*
    from popular_candidates
    inner join persons_needing_fallbacks
        on popular_candidates.person_id = persons_needing_fallbacks.person_id
    left join purchased_products
        on
            popular_candidates.person_id = purchased_products.person_id
            and popular_candidates.product_id = purchased_products.product_id
    left join top_co_purchases
        on
            popular_candidates.person_id = top_co_purchases.person_id
            and popular_candidates.product_id = top_co_purchases.product_id
    left join unbought_category_populars
        on
            popular_candidates.person_id = unbought_category_populars.person_id
            and popular_candidates.product_id = unbought_category_populars.product_id
    where
        purchased_products.product_id is null
        and top_co_purchases.product_id is null
        and unbought_category_populars.product_id is null

),

candidates as (

    select
        person_id,
        product_id,
        score,
        method_priority,
        method  -- noqa: RF04
    from top_co_purchases
    union all
    select * from unbought_category_populars
    union all
    select * from unbought_populars

),

recommendations_ranked as (

    -- co_purchase before category_popular before popular, by score within a method.
    select
        person_id,
        product_id,
        score,
        method,  -- noqa: RF04
        row_number() over (
            partition by person_id
            order by method_priority asc, score desc, product_id asc
        ) as recommendation_rank
    from candidates

)

select
    cast(
        {{ surrogate_key(['recommendations_ranked.person_id', 'recommendations_ranked.recommendation_rank']) }}
        as {{ dbt.type_string() }}
    ) as recommendation_id,
    recommendations_ranked.person_id,
    cast(recommendations_ranked.recommendation_rank as {{ dbt.type_int() }}) as recommendation_rank,
    recommendations_ranked.product_id,
    cast(recommendations_ranked.score as {{ dbt.type_numeric() }}) as score,
    cast(recommendations_ranked.method as {{ dbt.type_string() }}) as method,  -- noqa: RF04
    clock.as_of_date
from recommendations_ranked
cross join {{ ref('stg_data_clock') }} as clock
where recommendations_ranked.recommendation_rank <= {{ recommendation_count }}
