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
    {#- PostgreSQL has no try_cast; the raw tables are text, so cast only values that look right. -#}
    {%- if type | lower in ['double', 'double precision', 'numeric', 'float', 'bigint', 'integer', 'int'] -%}
        case when trim({{ expression }}) ~ '^[-+]?[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$'
            then cast(trim({{ expression }}) as {{ type }}) end
    {%- else -%}
        cast({{ expression }} as {{ type }})
    {%- endif -%}
{%- endmacro %}
