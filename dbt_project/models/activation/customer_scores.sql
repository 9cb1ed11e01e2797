-- One row per person: the churn and LTV scores the Python model layer wrote back (sources ml_scores),
-- null for people without a score row (the scorer only scores people with at least one order). On a
-- fresh warehouse, before the first scoring, the score tables do not exist and everyone is unscored
-- (macro source_or_empty).
{%- set score_columns = {
    'person_id': dbt.type_string(),
    'score': type_double(),
    'model_version': dbt.type_string(),
    'scored_at': dbt.type_timestamp(),
} %}

with persons as (

    select person_id from {{ ref('persons') }}

),

churn_scores as (

    {{ source_or_empty('ml_scores', 'churn_scores', score_columns) }}

),

ltv_scores as (

    {{ source_or_empty('ml_scores', 'ltv_scores', score_columns) }}

)

select
    persons.person_id,
    churn_scores.score as churn_score,
    churn_scores.model_version as churn_model_version,
    churn_scores.scored_at as churn_scored_at,
    ltv_scores.score as ltv_score,
    ltv_scores.model_version as ltv_model_version,
    ltv_scores.scored_at as ltv_scored_at
from persons
left join churn_scores
    on persons.person_id = churn_scores.person_id
left join ltv_scores
    on persons.person_id = ltv_scores.person_id
