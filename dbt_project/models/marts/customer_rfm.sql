-- One row per person with at least one completed purchase (placed, paid or shipped; cancelled, refunded
-- and test orders excluded) at or before the end of the as-of date: RFM values, quintile scores, segment,
-- and the BTYD summary of lifetimes' summary_data_from_transaction_data(freq='D').
with person_orders as (

    {{ person_orders_as_of() }}

),

btyd_summary as (

    -- Same-day orders are one purchase (freq='D'); macro person_btyd_summary, shared with models/ml.
    {{ person_btyd_summary('person_orders') }}

),

rfm_values as (

    {{ person_rfm_values('person_orders') }}

),

rfm_scores as (

    -- Quintiles with ties broken by person_id, so the scores are reproducible. Equal values at a quintile's
    -- edge can still fall on either side of it: person_id decides which (ntile fills equal-sized buckets).
    select
        *,
        ntile(5) over (order by recency_days desc, person_id asc) as r_score,
        ntile(5) over (order by frequency, person_id) as f_score,
        ntile(5) over (order by monetary, person_id) as m_score
    from rfm_values

),

segments as (

    select * from {{ ref('rfm_segments') }}

)

select
    rfm_scores.person_id,
    rfm_scores.as_of_date,
    cast(rfm_scores.first_purchase_at as {{ dbt.type_timestamp() }}) as first_purchase_at,
    cast(rfm_scores.last_purchase_at as {{ dbt.type_timestamp() }}) as last_purchase_at,
    cast(rfm_scores.recency_days as {{ dbt.type_bigint() }}) as recency_days,
    cast(rfm_scores.frequency as {{ dbt.type_bigint() }}) as frequency,
    cast(rfm_scores.monetary as {{ dbt.type_numeric() }}) as monetary,
    cast(rfm_scores.r_score as {{ dbt.type_int() }}) as r_score,
    cast(rfm_scores.f_score as {{ dbt.type_int() }}) as f_score,
    cast(rfm_scores.m_score as {{ dbt.type_int() }}) as m_score,
    {{ dbt.concat([
        'cast(rfm_scores.r_score as ' ~ dbt.type_string() ~ ')',
        'cast(rfm_scores.f_score as ' ~ dbt.type_string() ~ ')',
        'cast(rfm_scores.m_score as ' ~ dbt.type_string() ~ ')',
    ]) }} as rfm_score,
    segments.rfm_segment,
    cast(btyd_summary.btyd_frequency as {{ dbt.type_bigint() }}) as btyd_frequency,
    cast(btyd_summary.btyd_recency as {{ dbt.type_bigint() }}) as btyd_recency,
    cast(btyd_summary.btyd_t as {{ dbt.type_bigint() }}) as btyd_t,
    cast(btyd_summary.btyd_monetary_value as {{ dbt.type_numeric() }}) as btyd_monetary_value
from rfm_scores
inner join btyd_summary
    on rfm_scores.person_id = btyd_summary.person_id
left join segments
    on
        rfm_scores.r_score = segments.r_score
        and rfm_scores.f_score = segments.f_score
        and rfm_scores.m_score = segments.m_score
