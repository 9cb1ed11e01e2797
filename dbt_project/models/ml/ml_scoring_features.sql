-- Scoring features: one row per person with at least one completed purchase before the end of the as-of
-- date (stg_data_clock.as_of_date), with exactly the feature columns of ml_training_examples computed by
-- the same macros with the as-of date as the only cutoff. No labels: the window has not happened yet.
with cutoffs as (

    select as_of_date from {{ ref('stg_data_clock') }}

),

{{ ml_feature_ctes('cutoffs') }}

select
    ml_features.person_id,
    cast(ml_features.as_of_date as date) as cutoff_date,
    cast({{ var('ml_horizon_days', 90) | int }} as {{ dbt.type_int() }}) as horizon_days,
    {{ ml_feature_columns('ml_features') }}
from ml_features
