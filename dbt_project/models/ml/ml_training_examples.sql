-- Point-in-time training set: one row per person, training cutoff and label window (ml_training_cutoffs)
-- for every person with at least one completed purchase before the end of the cutoff date. Features
-- (f_*, btyd_*) come from the marts' own macros evaluated at the cutoff, so they see only facts timestamped
-- at or before it; a cutoff shared by two windows is computed once. Labels come from the window
-- (cutoff, cutoff + horizon], in whole UTC days: a purchase on the cutoff date is a feature, one on the
-- window's last day is a label. Each window's orders carry the status they had at the end of the window,
-- so the labels too use nothing after the window.
with training_cutoffs as (

    select * from {{ ref('ml_training_cutoffs') }}

),

cutoffs as (

    select distinct cutoff_date as as_of_date from training_cutoffs

),

{{ ml_feature_ctes('cutoffs') }},

label_window_ends as (

    select distinct label_window_end_date as as_of_date from training_cutoffs

),

label_window_orders as (

    {{ person_orders_as_of('label_window_ends') }}

),

labels as (

    select
        label_window_orders.person_id,
        training_cutoffs.cutoff_date,
        training_cutoffs.horizon_days,
        -- count(...), not sum(case ... then 1 else 0 end): DuckDB 2.0.0 folds `sum(case ...) > 0` to false when
        -- every order is completed (CDNOW: all shipped), which marked every training example churned.
        count(case when label_window_orders.is_completed then 1 end) as window_purchase_count,
        sum(
            case when label_window_orders.is_completed then label_window_orders.net_revenue_reporting else 0 end
        ) as window_net_spend
    from label_window_orders
    inner join training_cutoffs
        on label_window_orders.as_of_date = training_cutoffs.label_window_end_date
    where label_window_orders.purchase_date > training_cutoffs.cutoff_date
    group by label_window_orders.person_id, training_cutoffs.cutoff_date, training_cutoffs.horizon_days

)

select
    ml_features.person_id,
    cast(ml_features.as_of_date as date) as cutoff_date,
    cast(training_cutoffs.horizon_days as {{ dbt.type_int() }}) as horizon_days,
    {{ ml_feature_columns('ml_features') }},
    cast(
        case when coalesce(labels.window_purchase_count, 0) > 0 then 0 else 1 end as {{ dbt.type_int() }}
    ) as label_is_churned,
    -- Net revenue is subtotal - discount; a discount above the subtotal must not make spend negative.
    cast(
        case when coalesce(labels.window_net_spend, 0) > 0 then labels.window_net_spend else 0 end
        as {{ dbt.type_numeric() }}
    ) as label_net_spend
from ml_features
inner join training_cutoffs
    on ml_features.as_of_date = training_cutoffs.cutoff_date
left join labels
    on
        ml_features.person_id = labels.person_id
        and ml_features.as_of_date = labels.cutoff_date
        and training_cutoffs.horizon_days = labels.horizon_days
