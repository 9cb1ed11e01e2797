{#-
    customer_segment_rules(): the ordered segment rules of customer_segments. THIS is the file to edit.

    Each rule has a `segment` name (snake_case), a `description` and a `when`: a SQL condition over the
    columns of customer_segments' `segment_inputs` CTE, i.e. every column of customer_360, the RFM columns
    of customer_rfm (recency_days, frequency, monetary, r_score, f_score, m_score, rfm_segment; null for
    people who never bought), the scores and tiers (ltv_score, ltv_tier, churn_score, churn_band) and one flag
    per trigger of marts.behavioral_triggers firing now (has_cart_abandoned_trigger,
    has_browse_abandoned_trigger, has_winback_trigger, has_post_purchase_cross_sell_trigger). Rules are
    tried from the top and the FIRST rule whose `when` is true names the person's segment, so order is
    precedence. The last rule must be the catch-all `when: "true"` so that everyone
    gets exactly one segment (customer_segments refuses to compile otherwise). A condition that is null
    (e.g. on a column that is null for the person) does not match.

    To use other rules without editing this file, pass a list of the same shape (dicts with segment,
    description, when) as the var `customer_segment_rules` (dbt_project.yml or --vars).
-#}
{% macro customer_segment_rules() -%}
{%- set default_rules = [
    {
        'segment': 'vip',
        'description': 'Top 20% of predicted lifetime value and not likely to churn; protect and reward.',
        'when': "ltv_tier = 'high' and churn_band in ('low', 'medium')",
    },
    {
        'segment': 'at_risk_high_value',
        'description': 'High or medium predicted value but a high churn risk; the costliest people to lose.',
        'when': "ltv_tier in ('high', 'medium') and churn_band = 'high'",
    },
    {
        'segment': 'cart_abandoner',
        'description': 'Left products in the cart without ordering them (trigger cart_abandoned).',
        'when': "has_cart_abandoned_trigger",
    },
    {
        'segment': 'new_customer',
        'description': "First order within the lifecycle 'new' window (var lifecycle_new_days).",
        'when': "lifecycle_stage = 'new'",
    },
    {
        'segment': 'loyal',
        'description': 'Repeat buyers who ordered recently (lifecycle stage loyal).',
        'when': "lifecycle_stage = 'loyal'",
    },
    {
        'segment': 'browse_abandoner',
        'description': 'Viewed products in the last day without buying them (trigger browse_abandoned).',
        'when': "has_browse_abandoned_trigger",
    },
    {
        'segment': 'win_back',
        'description': 'Past buyers who have not ordered for a while but are not gone yet (lifecycle stage at_risk).',
        'when': "lifecycle_stage = 'at_risk'",
    },
    {
        'segment': 'dormant',
        'description': 'Past buyers whose last order is over a year old (lifecycle stage churned).',
        'when': "lifecycle_stage = 'churned'",
    },
    {
        'segment': 'prospect',
        'description': 'Known contacts who never completed an order.',
        'when': "order_count = 0",
    },
    {
        'segment': 'active_customer',
        'description': 'Catch-all; in practice recent buyers none of the rules above picked.',
        'when': "true",
    }
] -%}
{%- set override = var('customer_segment_rules', none) -%}
{#- A list from the var replaces the defaults (anything else, e.g. a linter's placeholder, is ignored). -#}
{%- if override is iterable and override is not string and override is not mapping -%}
    {{ return(override) }}
{%- endif -%}
{{ return(default_rules) }}
{%- endmacro %}
