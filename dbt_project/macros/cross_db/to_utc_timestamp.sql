{#-
    to_utc_timestamp(expression): parse ISO-8601 text with any UTC offset ('Z', '+01:00', '-0500') or none
    (read as UTC) into a timestamp without time zone in UTC. Unparseable text gives null, which staging
    quarantines as `unparseable_timestamp`.
-#}
{% macro to_utc_timestamp(expression) -%}
    {{ return(adapter.dispatch('to_utc_timestamp', 'personalize')(expression)) }}
{%- endmacro %}

{% macro default__to_utc_timestamp(expression) -%}
    cast(try_cast(trim({{ expression }}) as timestamp with time zone) as timestamp)
{%- endmacro %}

{% macro duckdb__to_utc_timestamp(expression) -%}
    {#- The profile pins TimeZone = UTC, so text without an offset is read as UTC. The UTC wall time of a
        finite instant is its epoch in microseconds: converting through it skips the time zone library,
        which made the conversion several times dearer than the parse at millions of rows. Infinite
        values ('infinity') keep the library conversion. -#}
    {%- set parsed = 'try_cast(' ~ trimmed(expression) ~ ' as timestamptz)' -%}
    case
        when isfinite({{ parsed }}) then make_timestamp(epoch_us({{ parsed }}))
        else timezone('UTC', {{ parsed }})
    end
{%- endmacro %}

{% macro snowflake__to_utc_timestamp(expression) -%}
    convert_timezone('UTC', try_to_timestamp_tz(trim({{ expression }})))::timestamp_ntz
{%- endmacro %}

{% macro postgres__to_utc_timestamp(expression) -%}
    {#- The shape check keeps out what PostgreSQL reads but DuckDB does not ('yesterday', 'epoch'); the
        function (create_cast_functions) turns an impossible date or time into null. -#}
    case
        when trim({{ expression }}) ~ '^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$'
            then ({{ postgres_try_cast('timestamptz', 'trim(' ~ expression ~ ')') }} at time zone 'UTC')
    end
{%- endmacro %}

{% macro spark__to_utc_timestamp(expression) -%}
    to_utc_timestamp(to_timestamp(trim({{ expression }})), 'UTC')
{%- endmacro %}
