-- One row per person: LTV tier and churn risk band. Tiers rank the LTV-scored persons by predicted LTV,
-- highest first, ties to the smaller person_id so every run gives the same tiers: ranks up to
-- var ltv_tier_high_share of the scored count are high, up to high + var ltv_tier_medium_share medium,
-- the rest low. Bands cut the churn score at vars churn_band_high_min and churn_band_medium_min.
-- People without a score (no order yet, or before the first scoring) are 'unscored' in both.
with scores as (

    select * from {{ ref('customer_scores') }}

),

ltv_ranked as (

    select
        person_id,
        row_number() over (order by ltv_score desc, person_id asc) as ltv_rank,
        count(*) over () as ltv_scored_count
    from scores
    where ltv_score is not null

)

select
    scores.person_id,
    scores.ltv_score,
    cast(ltv_ranked.ltv_rank as {{ dbt.type_bigint() }}) as ltv_rank,
    case
        when ltv_ranked.ltv_rank is null then 'unscored'
        when
            ltv_ranked.ltv_rank
            <= ltv_ranked.ltv_scored_count * cast({{ var('ltv_tier_high_share', 0.2) }} as {{ dbt.type_numeric() }})
            then 'high'
        when
            ltv_ranked.ltv_rank
            <= ltv_ranked.ltv_scored_count * (
                cast({{ var('ltv_tier_high_share', 0.2) }} as {{ dbt.type_numeric() }})
                + cast({{ var('ltv_tier_medium_share', 0.3) }} as {{ dbt.type_numeric() }})
            )
            then 'medium'
        else 'low'
    end as ltv_tier,
    scores.churn_score,
    case
        when scores.churn_score is null then 'unscored'
        when scores.churn_score >= {{ var('churn_band_high_min', 0.7) }} then 'high'
        when scores.churn_score >= {{ var('churn_band_medium_min', 0.4) }} then 'medium'
        else 'low'
    end as churn_band,
    scores.ltv_model_version,
    scores.churn_model_version
from scores
left join ltv_ranked
    on scores.person_id = ltv_ranked.person_id
