-- One row per person: the deterministic control (holdout) group. The bucket (0-9999) comes from a hash
-- of the salted person_id alone (macro control_group_bucket), so membership is stable across runs and
-- independent of segment, tier and behaviour; the first var control_group_share x 10000 buckets are the
-- control group, which is never emailed and measures uplift in campaign_performance.
with persons as (

    select person_id from {{ ref('persons') }}

),

buckets as (

    select
        person_id,
        {{ control_group_bucket('person_id') }} as control_bucket
    from persons

)

select
    person_id,
    cast(control_bucket as {{ dbt.type_int() }}) as control_bucket,
    control_bucket < {{ (var('control_group_share', 0.1) | float * 10000) | round | int }} as is_control
from buckets
