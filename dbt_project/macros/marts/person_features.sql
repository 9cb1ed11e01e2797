{#-
    Point-in-time person features, shared by the marts (one cutoff: stg_data_clock.as_of_date) and the ML
    training sets (many cutoffs), so that training and serving use one definition of every feature. Each
    macro renders a plain select (the body of a CTE) with one row per (person_id, as_of_date) that has any
    data, computed only from facts timestamped before the end of as_of_date. Trailing windows of N days end
    with the as-of date (as_of_window_start_at). `person_orders` is the name of a CTE rendered by
    person_orders_as_of; `cutoffs` is a relation with one row per cutoff in a column `as_of_date`.
-#}

{#- Order facts over all the person's orders as of each cutoff (completed = placed, paid or shipped). -#}
{% macro person_order_facts(person_orders) -%}
    select
        person_id,
        as_of_date,
        min(case when is_completed then ordered_at end) as first_order_at,
        max(case when is_completed then ordered_at end) as last_order_at,
        sum(case when is_completed then 1 else 0 end) as order_count,
        sum(case when is_completed then net_revenue_reporting else 0 end) as net_revenue,
        sum(case when is_refunded then 1 else 0 end) as refunded_order_count,
        {%- for days in [30, 90, 365] %}
        sum(
            case
                when is_completed and ordered_at >= {{ as_of_window_start_at('as_of_date', days) }} then 1
                else 0
            end
        ) as order_count_{{ days }}d,
        sum(
            case
                when is_completed and ordered_at >= {{ as_of_window_start_at('as_of_date', days) }}
                    then net_revenue_reporting
                else 0
            end
        ) as net_revenue_{{ days }}d{{ "," if not loop.last }}
        {%- endfor %}
    from {{ person_orders }}
    group by person_id, as_of_date
{%- endmacro %}

{#-
    RFM values of the completed orders as of each cutoff: first/last purchase, recency_days (whole days
    from the last purchase day to the cutoff), frequency (orders) and monetary (net revenue). Only persons
    with a completed purchase get a row.
-#}
{% macro person_rfm_values(person_orders) -%}
    select
        person_id,
        as_of_date,
        min(ordered_at) as first_purchase_at,
        max(ordered_at) as last_purchase_at,
        {{ dbt.datediff('max(purchase_date)', 'as_of_date', 'day') }} as recency_days,
        count(*) as frequency,
        sum(net_revenue_reporting) as monetary
    from {{ person_orders }}
    where is_completed
    group by person_id, as_of_date
{%- endmacro %}

{#-
    BTYD summary as of each cutoff, exactly lifetimes' summary_data_from_transaction_data(freq='D',
    observation_period_end=cutoff): same-day completed orders are one purchase day whose value is their
    sum; btyd_frequency = purchase days - 1, btyd_recency = days first to last purchase day, btyd_t = days
    from the first purchase day to the cutoff, btyd_monetary_value = mean value of the repeat purchase
    days (0 when none).
-#}
{% macro person_btyd_summary(person_orders) -%}
    select
        person_id,
        as_of_date,
        count(*) - 1 as btyd_frequency,
        {{ dbt.datediff('min(purchase_date)', 'max(purchase_date)', 'day') }} as btyd_recency,
        {{ dbt.datediff('min(purchase_date)', 'as_of_date', 'day') }} as btyd_t,
        coalesce(avg(case when purchase_date > first_purchase_date then day_value end), 0) as btyd_monetary_value
    from (
        select
            purchase_days.*,
            min(purchase_days.purchase_date) over (
                partition by purchase_days.person_id, purchase_days.as_of_date
            ) as first_purchase_date
        from (
            select
                person_id,
                as_of_date,
                purchase_date,
                sum(net_revenue_reporting) as day_value
            from {{ person_orders }}
            where is_completed
            group by person_id, as_of_date, purchase_date
        ) as purchase_days
    ) as purchase_days_numbered
    group by person_id, as_of_date
{%- endmacro %}

{#- Web sessions (int_web_sessions) of identified persons started in the 7/30/90 days ending with each cutoff. -#}
{% macro person_web_sessions(cutoffs) -%}
    select
        sessions.person_id,
        cutoffs.as_of_date,
        sum(
            case when sessions.started_at >= {{ as_of_window_start_at('cutoffs.as_of_date', 7) }} then 1 else 0 end
        ) as sessions_7d,
        sum(
            case when sessions.started_at >= {{ as_of_window_start_at('cutoffs.as_of_date', 30) }} then 1 else 0 end
        ) as sessions_30d,
        count(*) as sessions_90d
    from {{ ref('int_web_sessions') }} as sessions
    inner join {{ cutoffs }} as cutoffs
        on
            sessions.started_at >= {{ as_of_window_start_at('cutoffs.as_of_date', 90) }}
            and sessions.started_at < {{ as_of_end_at('cutoffs.as_of_date') }}
    where sessions.person_id is not null
    group by sessions.person_id, cutoffs.as_of_date
{%- endmacro %}

{#-
    Human (not bot) product views and add-to-carts of known catalogue products by identified devices,
    before the end of each cutoff: one row per (event, cutoff) with event_id, event_type, product_id,
    event_at. Feed it to person_product_event_counts, or read it for last-viewed / open-cart facts.
-#}
{% macro person_product_events(cutoffs) -%}
    select
        web_events.person_id,
        cutoffs.as_of_date,
        web_events.event_id,
        web_events.event_type,
        web_events.product_id,
        web_events.event_at
    from {% call materialized_subquery('person_product_event_rows') %}
        select
            devices.person_id,
            product_events.event_id,
            product_events.event_type,
            product_events.product_id,
            product_events.event_at
        from {{ ref('stg_web__events') }} as product_events
        inner join {{ ref('int_identity_map') }} as devices
            on
                devices.identifier_type = 'anonymous_id'
                and product_events.anonymous_id = devices.identifier
        where
            not product_events.is_bot
            and not product_events.is_unknown_product
            and product_events.product_id is not null
            and product_events.event_type in ('product_view', 'add_to_cart')
    {% endcall %} as web_events
    inner join {{ cutoffs }} as cutoffs
        on web_events.event_at < {{ as_of_end_at('cutoffs.as_of_date') }}
{%- endmacro %}

{#- Product views and add-to-carts in the 7/30/90 days ending with each cutoff, from person_product_events. -#}
{% macro person_product_event_counts(product_events) -%}
    select
        person_id,
        as_of_date,
        {%- for event_type, name in [('product_view', 'product_views'), ('add_to_cart', 'add_to_carts')] %}
        {%- set outer_loop = loop %}
        {%- for days in [7, 30, 90] %}
        sum(
            case
                when event_type = '{{ event_type }}'
                    and event_at >= {{ as_of_window_start_at('as_of_date', days) }} then 1
                else 0
            end
        ) as {{ name }}_{{ days }}d{{ "," if not (loop.last and outer_loop.last) }}
        {%- endfor %}
        {%- endfor %}
    from {{ product_events }}
    group by person_id, as_of_date
{%- endmacro %}

{#-
    ESP events of the person's emails (int_identity_map, identifier_type email) before the end of each
    cutoff: one row per (event, cutoff) with email, campaign_id, event_type, bounce_type, is_machine_open,
    event_at, is_in_30d / is_in_90d (inside the trailing window) and is_human_engagement (a click, or an
    open that is not a machine or Apple-MPP open).
-#}
{% macro person_esp_events(cutoffs) -%}
    select
        esp.person_id,
        cutoffs.as_of_date,
        esp.email,
        esp.campaign_id,
        esp.event_type,
        esp.bounce_type,
        esp.is_machine_open,
        esp.event_at,
        esp.event_at >= {{ as_of_window_start_at('cutoffs.as_of_date', 30) }} as is_in_30d,
        esp.event_at >= {{ as_of_window_start_at('cutoffs.as_of_date', 90) }} as is_in_90d,
        esp.event_type = 'click' or (esp.event_type = 'open' and not esp.is_machine_open) as is_human_engagement
    from {% call materialized_subquery('person_esp_event_rows') %}
        select
            person_emails.person_id,
            esp_events.email,
            esp_events.campaign_id,
            esp_events.event_type,
            esp_events.bounce_type,
            esp_events.is_machine_open,
            esp_events.event_at
        from {{ ref('stg_esp__events') }} as esp_events
        inner join {{ ref('int_identity_map') }} as person_emails
            on
                person_emails.identifier_type = 'email'
                and esp_events.email = person_emails.identifier
    {% endcall %} as esp
    inner join {{ cutoffs }} as cutoffs
        on esp.event_at < {{ as_of_end_at('cutoffs.as_of_date') }}
{%- endmacro %}

{#-
    Email engagement per (person, cutoff) from person_esp_events: sends, human opens and clicks over 30 and
    90 days, clicked and human-engaged campaign counts (click-to-open = clicked / engaged, since a click
    implies a human open), and the last human engagement, human open and click. Events are first summed per
    campaign, so each distinct-campaign count is a plain sum of per-campaign flags (one aggregation pass
    instead of a distinct per count).
-#}
{% macro person_email_engagement(esp_events) -%}
    select
        person_id,
        as_of_date,
        sum(sends_30d) as email_sends_30d,
        sum(sends_90d) as email_sends_90d,
        sum(human_opens_30d) as email_human_opens_30d,
        sum(human_opens_90d) as email_human_opens_90d,
        sum(clicks_30d) as email_clicks_30d,
        sum(clicks_90d) as email_clicks_90d,
        sum(case when campaign_id is not null and clicks_30d > 0 then 1 else 0 end) as clicked_campaigns_30d,
        sum(case when campaign_id is not null and human_engagements_30d > 0 then 1 else 0 end)
            as engaged_campaigns_30d,
        sum(case when campaign_id is not null and clicks_90d > 0 then 1 else 0 end) as clicked_campaigns_90d,
        sum(case when campaign_id is not null and human_engagements_90d > 0 then 1 else 0 end)
            as engaged_campaigns_90d,
        max(last_email_engagement_at) as last_email_engagement_at,
        max(last_human_open_at) as last_human_open_at,
        max(last_click_at) as last_click_at
    from (
        select
            person_id,
            as_of_date,
            campaign_id,
            sum(case when event_type = 'sent' and is_in_30d then 1 else 0 end) as sends_30d,
            sum(case when event_type = 'sent' and is_in_90d then 1 else 0 end) as sends_90d,
            sum(case when event_type = 'open' and not is_machine_open and is_in_30d then 1 else 0 end)
                as human_opens_30d,
            sum(case when event_type = 'open' and not is_machine_open and is_in_90d then 1 else 0 end)
                as human_opens_90d,
            sum(case when event_type = 'click' and is_in_30d then 1 else 0 end) as clicks_30d,
            sum(case when event_type = 'click' and is_in_90d then 1 else 0 end) as clicks_90d,
            sum(case when is_human_engagement and is_in_30d then 1 else 0 end) as human_engagements_30d,
            sum(case when is_human_engagement and is_in_90d then 1 else 0 end) as human_engagements_90d,
            max(case when is_human_engagement then event_at end) as last_email_engagement_at,
            max(case when event_type = 'open' and not is_machine_open then event_at end) as last_human_open_at,
            max(case when event_type = 'click' then event_at end) as last_click_at
        from {{ esp_events }}
        group by person_id, as_of_date, campaign_id
    ) as campaign_engagement
    group by person_id, as_of_date
{%- endmacro %}

{#-
    The latest email-channel consent change per (person, cutoff) over all of the person's emails, made
    before the end of the cutoff date: status (opted_in / opted_out) and event_at. On a timestamp tie an
    opt-out wins, so the state is never a silent opt-in.
-#}
{% macro person_email_consent(cutoffs) -%}
    select
        person_id,
        as_of_date,
        status,
        event_at
    from (
        select
            consent.person_id,
            cutoffs.as_of_date,
            consent.status,
            consent.event_at,
            row_number() over (
                partition by consent.person_id, cutoffs.as_of_date
                order by
                    consent.event_at desc,
                    case when consent.status = 'opted_out' then 0 else 1 end,
                    consent.change_sequence desc,
                    consent.email asc
            ) as recency_rank
        from {% call materialized_subquery('person_email_consent_changes') %}
            select
                person_emails.person_id,
                consent_events.email,
                consent_events.status,
                consent_events.change_sequence,
                consent_events.event_at
            from {{ ref('stg_consent__events') }} as consent_events
            inner join {{ ref('int_identity_map') }} as person_emails
                on
                    person_emails.identifier_type = 'email'
                    and consent_events.email = person_emails.identifier
            where consent_events.channel = 'email'
        {% endcall %} as consent
        inner join {{ cutoffs }} as cutoffs
            on consent.event_at < {{ as_of_end_at('cutoffs.as_of_date') }}
    ) as consent_changes_ranked
    where recency_rank = 1
{%- endmacro %}

{#-
    Web sessions of identified people over their whole web history before the end of each cutoff:
    sessions_365d, sessions (all of them), browse_sessions (those that reached no checkout: browsing that
    did not turn into an order), and the first and last session's start. A longer view than
    person_web_sessions' 90 days: how often someone browses per day since they first came, and how long ago
    they last did compared with how often they usually do, say something about their purchase rate and
    whether they are still around that the order history alone does not (the ML features use it).
-#}
{% macro person_web_history(cutoffs) -%}
    select
        sessions.person_id,
        cutoffs.as_of_date,
        sum(
            case when sessions.started_at >= {{ as_of_window_start_at('cutoffs.as_of_date', 365) }} then 1 else 0 end
        ) as sessions_365d,
        count(*) as sessions,
        sum(case when sessions.checkouts_started = 0 then 1 else 0 end) as browse_sessions,
        min(sessions.started_at) as first_session_at,
        max(sessions.started_at) as last_session_at
    from {{ ref('int_web_sessions') }} as sessions
    inner join {{ cutoffs }} as cutoffs
        on sessions.started_at < {{ as_of_end_at('cutoffs.as_of_date') }}
    where sessions.person_id is not null
    group by sessions.person_id, cutoffs.as_of_date
{%- endmacro %}

{#-
    Email activity per (person, cutoff) from person_esp_events in one pass, without the per-campaign step of
    person_email_engagement (the same sums, minus the distinct-campaign counts): sends, human opens and
    clicks over 30 days, 90 days and every event before the end of the cutoff, and the last human open and
    click. With several cutoffs at millions of people the per-campaign groups do not fit in memory; the ML
    training sets use this.
-#}
{% macro person_email_activity(esp_events) -%}
    select
        person_id,
        as_of_date,
        {%- for window, condition in [('_30d', 'is_in_30d'), ('_90d', 'is_in_90d'), ('', 'true')] %}
        sum(case when event_type = 'sent' and {{ condition }} then 1 else 0 end) as email_sends{{ window }},
        sum(case when event_type = 'open' and not is_machine_open and {{ condition }} then 1 else 0 end)
            as email_human_opens{{ window }},
        sum(case when event_type = 'click' and {{ condition }} then 1 else 0 end) as email_clicks{{ window }},
        {%- endfor %}
        max(case when event_type = 'open' and not is_machine_open then event_at end) as last_human_open_at,
        max(case when event_type = 'click' then event_at end) as last_click_at
    from {{ esp_events }}
    group by person_id, as_of_date
{%- endmacro %}
