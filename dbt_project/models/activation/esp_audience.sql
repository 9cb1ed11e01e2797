-- The sync contract: one row per person who may be emailed now (customer_audience_status.is_in_audience:
-- consent given, not erased, not hard-bounced, not in the control group, not frequency-capped), with the
-- merge fields the reverse-ETL engine sends (reverse_etl.models.AUDIENCE_MERGE_COLUMNS). Every merge field
-- is filled: a missing first name gets the greeting var fallback_first_name, the recommendation slots come
-- filled from customer_recommendation_slots, and the offer falls back to the seed's any/any rule.
-- row_hash covers the email and every merge field, so a changed row is re-sent and an unchanged one is not.
with audience as (

    select * from {{ ref('customer_audience_status') }}
    where is_in_audience

),

customers as (

    select
        person_id,
        email,
        first_name
    from {{ ref('customer_360') }}

),

slots as (

    select * from {{ ref('customer_recommendation_slots') }}

),

recommendations as (

    select
        person_id,
    {%- for slot in [1, 2, 3] %}
        max(case when slot = {{ slot }} then product_id end) as rec_{{ slot }}_product_id,
        max(case when slot = {{ slot }} then product_name end) as rec_{{ slot }}_name,
        max(case when slot = {{ slot }} then product_url end) as rec_{{ slot }}_url,
        max(case when slot = {{ slot }} then image_url end) as rec_{{ slot }}_image{{ "," if not loop.last }}
    {%- endfor %}
    from slots
    group by person_id

),

offer_rules as (

    select * from {{ ref('offer_rules') }}

),

offers_ranked as (

    -- The most specific offer rule wins: exact segment and tier, then segment with any tier, then any
    -- segment with the tier, then the any/any default.
    select
        audience.person_id,
        offer_rules.offer,
        row_number() over (
            partition by audience.person_id
            order by
                case when offer_rules.segment = 'any' then 1 else 0 end,
                case when offer_rules.ltv_tier = 'any' then 1 else 0 end
        ) as specificity_rank
    from audience
    inner join offer_rules
        on
            offer_rules.segment in (audience.segment, 'any')
            and offer_rules.ltv_tier in (audience.ltv_tier, 'any')

),

payload as (

    select
        audience.person_id,
        customers.email,
        coalesce(nullif(trim(customers.first_name), ''), '{{ var("fallback_first_name", "there") }}') as first_name,
        audience.segment,
        audience.ltv_tier,
        audience.churn_band,
        {%- for slot in [1, 2, 3] %}
            recommendations.rec_{{ slot }}_product_id,
            recommendations.rec_{{ slot }}_name,
            recommendations.rec_{{ slot }}_url,
            recommendations.rec_{{ slot }}_image,
        {%- endfor %}
        offers_ranked.offer
    from audience
    inner join customers
        on audience.person_id = customers.person_id
    left join recommendations
        on audience.person_id = recommendations.person_id
    left join offers_ranked
        on
            audience.person_id = offers_ranked.person_id
            and offers_ranked.specificity_rank = 1

)

select
    person_id,
    email,
    first_name,
    segment,
    ltv_tier,
    churn_band,
    {%- for slot in [1, 2, 3] %}
        rec_{{ slot }}_product_id,
        rec_{{ slot }}_name,
        rec_{{ slot }}_url,
        rec_{{ slot }}_image,
    {%- endfor %}
    offer,
    {{ run_started_at_timestamp() }} as updated_at,
    {{ surrogate_key([
        'email', 'first_name', 'segment', 'ltv_tier', 'churn_band',
        'rec_1_product_id', 'rec_1_name', 'rec_1_url', 'rec_1_image',
        'rec_2_product_id', 'rec_2_name', 'rec_2_url', 'rec_2_image',
        'rec_3_product_id', 'rec_3_name', 'rec_3_url', 'rec_3_image',
        'offer',
    ]) }} as row_hash
from payload
