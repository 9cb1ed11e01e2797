{#-
    ml_feature_ctes(cutoffs): the CTE definitions (comma separated, to follow `with ...,`) that compute the
    model features of every person with at least one completed purchase before the end of each cutoff,
    ending in a CTE `ml_features` with one row per (person_id, as_of_date). `cutoffs` names a relation
    with one row per cutoff in a column `as_of_date`.

    Every feature comes from the person_* macros the marts use (person_orders_as_of, person_rfm_values,
    person_btyd_summary, person_order_facts, person_web_sessions, person_web_history, person_product_events,
    person_esp_events, person_email_activity, person_email_consent), so training, scoring and the marts
    share one definition of each quantity. ml_training_examples and ml_scoring_features differ only in
    their cutoffs (and the labels).

    Columns of ml_features: person_id, as_of_date, f_* (double precision; counts, money in the reporting currency,
    days), btyd_frequency, btyd_recency, btyd_t (bigint), btyd_monetary_value (numeric).
-#}
{% macro ml_feature_ctes(cutoffs) -%}
ml_person_orders as (

    {{ person_orders_as_of(cutoffs) }}

),

ml_rfm_values as (

    {{ person_rfm_values('ml_person_orders') }}

),

ml_btyd_summary as (

    {{ person_btyd_summary('ml_person_orders') }}

),

ml_order_facts as (

    {{ person_order_facts('ml_person_orders') }}

),

ml_web_sessions as (

    {{ person_web_sessions(cutoffs) }}

),

-- Only the 90 days the counts look at: person_product_events reaches back to the first event (customer_360
-- wants the last viewed product), and every event times every cutoff ran out of memory at 1M customers.
-- The filter becomes a join condition; people without recent events still get zeros (coalesce below).
ml_product_events as (

    select *
    from ({{ person_product_events(cutoffs) }}) as product_events
    where product_events.event_at >= {{ as_of_window_start_at('product_events.as_of_date', 90) }}

),

ml_product_event_counts as (

    {{ person_product_event_counts('ml_product_events') }}

),

ml_esp_events as (

    {{ person_esp_events(cutoffs) }}

),

-- Not person_email_engagement: its per-campaign groups, times every cutoff, exhaust memory at millions of
-- people; person_email_activity computes the same sums in one pass.
ml_email_activity as (

    {{ person_email_activity('ml_esp_events') }}

),

ml_email_consent as (

    {{ person_email_consent(cutoffs) }}

),

ml_web_history as (

    {{ person_web_history(cutoffs) }}

),


ml_features as (

    select
        rfm.person_id,
        rfm.as_of_date,
        {%- for column, expression in ml_feature_expressions() %}
        cast({{ expression }} as {{ type_double() }}) as f_{{ column }},
        {%- endfor %}
        cast(btyd.btyd_frequency as {{ dbt.type_bigint() }}) as btyd_frequency,
        cast(btyd.btyd_recency as {{ dbt.type_bigint() }}) as btyd_recency,
        cast(btyd.btyd_t as {{ dbt.type_bigint() }}) as btyd_t,
        cast(btyd.btyd_monetary_value as {{ dbt.type_numeric() }}) as btyd_monetary_value
    from ml_rfm_values as rfm
    inner join ml_btyd_summary as btyd
        on rfm.person_id = btyd.person_id and rfm.as_of_date = btyd.as_of_date
    inner join ml_order_facts as orders
        on rfm.person_id = orders.person_id and rfm.as_of_date = orders.as_of_date
    left join ml_web_sessions as sessions
        on rfm.person_id = sessions.person_id and rfm.as_of_date = sessions.as_of_date
    left join ml_product_event_counts as product_events
        on rfm.person_id = product_events.person_id and rfm.as_of_date = product_events.as_of_date
    left join ml_email_activity as engagement
        on rfm.person_id = engagement.person_id and rfm.as_of_date = engagement.as_of_date
    left join ml_email_consent as consent
        on rfm.person_id = consent.person_id and rfm.as_of_date = consent.as_of_date
    left join ml_web_history as web_history
        on rfm.person_id = web_history.person_id and rfm.as_of_date = web_history.as_of_date

)
{%- endmacro %}

{#-
    ml_feature_expressions(): the feature list as (name, SQL expression) pairs over the CTE aliases of
    ml_feature_ctes; each becomes the column f_<name>. One list, so the SQL and the docs cannot drift.
-#}
{% macro ml_feature_expressions() -%}
    {%- set web_tenure_days = dbt.datediff('cast(web_history.first_session_at as date)', 'rfm.as_of_date', 'day') -%}
    {%- set days_since_last_session =
        dbt.datediff('cast(web_history.last_session_at as date)', 'rfm.as_of_date', 'day') -%}
    {#- Days on the web, the first session's day and the cutoff both counted: a rate's denominator, never 0. -#}
    {%- set web_days = '(' ~ web_tenure_days ~ ' + 1)' -%}
    {%- set features = [
        ('recency_days', 'rfm.recency_days'),
        ('frequency', 'rfm.frequency'),
        ('monetary', 'rfm.monetary'),
        ('avg_order_value', '1.0 * rfm.monetary / rfm.frequency'),
        ('tenure_days', dbt.datediff('cast(rfm.first_purchase_at as date)', 'rfm.as_of_date', 'day')),
        ('orders_30d', 'orders.order_count_30d'),
        ('orders_90d', 'orders.order_count_90d'),
        ('orders_365d', 'orders.order_count_365d'),
        ('spend_30d', 'orders.net_revenue_30d'),
        ('spend_90d', 'orders.net_revenue_90d'),
        ('spend_365d', 'orders.net_revenue_365d'),
        ('refunded_orders', 'orders.refunded_order_count'),
        ('sessions_7d', 'coalesce(sessions.sessions_7d, 0)'),
        ('sessions_30d', 'coalesce(sessions.sessions_30d, 0)'),
        ('sessions_90d', 'coalesce(sessions.sessions_90d, 0)'),
        ('product_views_7d', 'coalesce(product_events.product_views_7d, 0)'),
        ('product_views_30d', 'coalesce(product_events.product_views_30d, 0)'),
        ('product_views_90d', 'coalesce(product_events.product_views_90d, 0)'),
        ('add_to_carts_7d', 'coalesce(product_events.add_to_carts_7d, 0)'),
        ('add_to_carts_30d', 'coalesce(product_events.add_to_carts_30d, 0)'),
        ('add_to_carts_90d', 'coalesce(product_events.add_to_carts_90d, 0)'),
        ('email_sends_30d', 'coalesce(engagement.email_sends_30d, 0)'),
        ('email_sends_90d', 'coalesce(engagement.email_sends_90d, 0)'),
        ('email_human_opens_30d', 'coalesce(engagement.email_human_opens_30d, 0)'),
        ('email_human_opens_90d', 'coalesce(engagement.email_human_opens_90d, 0)'),
        ('email_clicks_30d', 'coalesce(engagement.email_clicks_30d, 0)'),
        ('email_clicks_90d', 'coalesce(engagement.email_clicks_90d, 0)'),
        ('days_since_last_human_open',
            dbt.datediff('cast(engagement.last_human_open_at as date)', 'rfm.as_of_date', 'day')),
        ('days_since_last_click', dbt.datediff('cast(engagement.last_click_at as date)', 'rfm.as_of_date', 'day')),
        ('is_email_opted_in', "case when consent.status = 'opted_in' then 1 else 0 end"),
        ('is_email_opted_out', "case when consent.status = 'opted_out' then 1 else 0 end"),
        ('sessions_365d', 'coalesce(web_history.sessions_365d, 0)'),
        ('days_since_last_session', days_since_last_session),
        ('email_sends_all', 'coalesce(engagement.email_sends, 0)'),
        ('email_human_opens_all', 'coalesce(engagement.email_human_opens, 0)'),
        ('email_clicks_all', 'coalesce(engagement.email_clicks, 0)'),
        ('email_human_open_rate', '1.0 * engagement.email_human_opens / nullif(engagement.email_sends, 0)'),
        ('sessions_all', 'coalesce(web_history.sessions, 0)'),
        ('browse_sessions_all', 'coalesce(web_history.browse_sessions, 0)'),
        ('web_tenure_days', web_tenure_days),
        ('sessions_per_day', '1.0 * web_history.sessions / ' ~ web_days),
        ('browse_sessions_per_day', '1.0 * web_history.browse_sessions / ' ~ web_days),
        ('sessions_per_order', '1.0 * coalesce(web_history.sessions, 0) / rfm.frequency'),
        ('session_gaps_since_last_session',
            '1.0 * ' ~ days_since_last_session ~ ' * web_history.sessions / ' ~ web_days),
        ('email_click_rate', '1.0 * engagement.email_clicks / nullif(engagement.email_sends, 0)'),
        ('email_human_open_rate_90d',
            '1.0 * engagement.email_human_opens_90d / nullif(engagement.email_sends_90d, 0)'),
    ] -%}
    {{ return(features) }}
{%- endmacro %}

{#-
    ml_feature_columns(alias): the select list of the feature columns of ml_features (f_* in
    ml_feature_expressions order, then the btyd_* columns), qualified with `alias`, comma separated.
-#}
{% macro ml_feature_columns(alias) -%}
    {%- for column, expression in ml_feature_expressions() -%}
        {{ alias }}.f_{{ column }},
    {% endfor -%}
    {{ alias }}.btyd_frequency,
    {{ alias }}.btyd_recency,
    {{ alias }}.btyd_t,
    {{ alias }}.btyd_monetary_value
{%- endmacro %}
