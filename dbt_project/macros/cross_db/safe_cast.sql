{#-
    safe_cast(expression, type): cast that yields null instead of failing on bad input, so staging can
    quarantine the row with a reason rather than crash the build.
-#}
{% macro safe_cast(expression, type) -%}
    {{ return(adapter.dispatch('safe_cast', 'personalize')(expression, type)) }}
{%- endmacro %}

{% macro default__safe_cast(expression, type) -%}
    try_cast({{ expression }} as {{ type }})
{%- endmacro %}

{% macro postgres__safe_cast(expression, type) -%}
    {#- PostgreSQL has no try_cast: the functions of create_cast_functions return null where a cast fails.
        Types are matched on their name without precision, so numeric(28,6) is a numeric. -#}
    {%- set base = (type | lower).split('(')[0] | trim -%}
    {%- if base in ['numeric', 'decimal'] -%}
        cast({{ postgres_try_cast('numeric', expression) }} as {{ type }})
    {%- elif base in ['double', 'double precision', 'float', 'float8', 'real'] -%}
        cast({{ postgres_try_cast('double', expression) }} as {{ type }})
    {%- elif base in ['bigint', 'integer', 'int', 'int8', 'int4', 'smallint'] -%}
        cast({{ postgres_try_cast('bigint', expression) }} as {{ type }})
    {%- elif base == 'date' -%}
        {{ postgres_try_cast('date', expression) }}
    {%- else -%}
        {#- Text and the like, which cannot fail; also dbt's unit-test fixtures, which call safe_cast. -#}
        cast({{ expression }} as {{ type }})
    {%- endif -%}
{%- endmacro %}
