{#-
    time_bucket(timestamp, seconds): the number of the window of `seconds` (a whole number) seconds, counted
    from 1970-01-01 00:00 UTC, that a timestamp falls in. Windows start on whole seconds, so two timestamps
    with the same number have dbt.datediff(..., 'second') (whole seconds crossed) below `seconds`:
    int_web_sessions relies on that alone.
-#}
{% macro time_bucket(timestamp, seconds) -%}
    {{ return(adapter.dispatch('time_bucket', 'personalize')(timestamp, seconds)) }}
{%- endmacro %}

{% macro default__time_bucket(timestamp, seconds) -%}
    floor({{ dbt.datediff("cast('1970-01-01 00:00:00' as " ~ dbt.type_timestamp() ~ ")", timestamp, 'second') }} / {{ seconds * 1.0 }})
{%- endmacro %}

{% macro duckdb__time_bucket(timestamp, seconds) -%}
    {#- The epoch in microseconds is read straight from the value; date_diff computes calendar parts. -#}
    floor(epoch_us({{ timestamp }}) / {{ seconds * 1000000 }})
{%- endmacro %}
