-- One row per person: the primary segment, from the ordered rules of macro customer_segment_rules
-- (first match wins, the last rule is the catch-all). The rules see every column of `segment_inputs`:
-- customer_360, the RFM columns, the score tiers and the trigger flags.
{%- set rules = customer_segment_rules() %}
{%- if rules | length == 0 or rules[-1]['when'] | string | trim | lower != 'true' %}
    {{ exceptions.raise_compiler_error(
        "customer_segment_rules: the last rule must be the catch-all `when: \"true\"` so that every person "
        ~ "gets a segment; got " ~ (rules[-1] if rules else 'no rules')
    ) }}
{%- endif %}
{%- set segment_names = [] %}
{%- for rule in rules %}
    {%- if not rule.get('segment') or not rule.get('when') %}
        {{ exceptions.raise_compiler_error(
            "customer_segment_rules: rule " ~ loop.index ~ " needs a `segment` and a `when`: " ~ rule
        ) }}
    {%- endif %}
    {%- if rule['segment'] in segment_names %}
        {{ exceptions.raise_compiler_error(
            "customer_segment_rules: segment `" ~ rule['segment'] ~ "` appears twice (rule " ~ loop.index ~ ")"
        ) }}
    {%- endif %}
    {%- do segment_names.append(rule['segment']) %}
{%- endfor %}

with customers as (

    select * from {{ ref('customer_360') }}

),

rfm as (

    select * from {{ ref('customer_rfm') }}

),

score_tiers as (

    select * from {{ ref('customer_score_tiers') }}

),

triggers as (

    -- One flag per trigger of marts.behavioral_triggers that fires now for the person.
    select
        person_id,
        max(case when trigger_name = 'cart_abandoned' then 1 else 0 end) = 1 as has_cart_abandoned_trigger,
        max(case when trigger_name = 'browse_abandoned' then 1 else 0 end) = 1 as has_browse_abandoned_trigger,
        max(case when trigger_name = 'winback' then 1 else 0 end) = 1 as has_winback_trigger,
        max(case when trigger_name = 'post_purchase_cross_sell' then 1 else 0 end) = 1
            as has_post_purchase_cross_sell_trigger
    from {{ ref('behavioral_triggers') }}
    group by person_id

),

segment_inputs as (

    select
        customers.*,
        rfm.recency_days,
        rfm.frequency,
        rfm.monetary,
        rfm.r_score,
        rfm.f_score,
        rfm.m_score,
        rfm.rfm_segment,
        score_tiers.ltv_score,
        score_tiers.ltv_tier,
        score_tiers.churn_score,
        score_tiers.churn_band,
        coalesce(triggers.has_cart_abandoned_trigger, false) as has_cart_abandoned_trigger,
        coalesce(triggers.has_browse_abandoned_trigger, false) as has_browse_abandoned_trigger,
        coalesce(triggers.has_winback_trigger, false) as has_winback_trigger,
        coalesce(triggers.has_post_purchase_cross_sell_trigger, false) as has_post_purchase_cross_sell_trigger
    from customers
    left join rfm
        on customers.person_id = rfm.person_id
    left join score_tiers
        on customers.person_id = score_tiers.person_id
    left join triggers
        on customers.person_id = triggers.person_id

),

matched as (

    select
        person_id,
        as_of_date,
        case
            {%- for rule in rules %}
                when {{ rule['when'] }} then {{ loop.index }}
            {%- endfor %}
        end as segment_rule_number
    from segment_inputs

)

select
    person_id,
    as_of_date,
    case segment_rule_number
        {%- for rule in rules %}
            when {{ loop.index }} then '{{ rule["segment"] }}'
        {%- endfor %}
    end as segment,
    cast(segment_rule_number as {{ dbt.type_int() }}) as segment_rule_number
from matched
