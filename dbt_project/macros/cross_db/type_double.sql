{#-
    type_double(): a 64-bit floating point type. dbt.type_float() renders `float`, which is 64-bit on
    PostgreSQL and Snowflake but 32-bit on DuckDB, too coarse for money features.
-#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'personalize')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    double precision
{%- endmacro %}

{% macro duckdb__type_double() -%}
    double
{%- endmacro %}

{% macro spark__type_double() -%}
    double
{%- endmacro %}
