{#-
    create_cast_functions(): on-run-start hook that gives adapters without a TRY_CAST the functions
    safe_cast and to_utc_timestamp call. Nothing on DuckDB, Snowflake and Spark, which have one.

    On PostgreSQL: personalize_try_<type>(text) in the target schema, each returning null where the cast
    fails (a value out of range, such as 2025-02-30, as well as text of the wrong shape), so that staging
    quarantines the row instead of the build stopping. The timestamp function reads text without an offset
    as UTC whatever the session's time zone, as DuckDB's profile does.
-#}
{% macro create_cast_functions() -%}
    {{ return(adapter.dispatch('create_cast_functions', 'personalize')()) }}
{%- endmacro %}

{% macro default__create_cast_functions() -%}
    {{ return('') }}
{%- endmacro %}

{% macro postgres__create_cast_functions() -%}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set functions = {
        'numeric': 'numeric',
        'double': 'double precision',
        'bigint': 'bigint',
        'date': 'date',
        'timestamptz': 'timestamptz',
    } -%}
    {%- set statements = ['create schema if not exists ' ~ adapter.quote(target.schema)] -%}
    {%- for name, sql_type in functions.items() -%}
        {#- numeric accepts NaN and Infinity, the date types words such as 'today': not values of a raw export. -#}
        {%- set guard = "value ~* '(nan|inf)'" if name in ('numeric', 'bigint') else (
            "value !~ '^\\s*[0-9]'" if name in ('date', 'timestamptz') else 'false') -%}
        {%- set via = '::numeric' if name == 'bigint' else '' -%}
        {%- do statements.append(
            'create or replace function ' ~ adapter.quote(target.schema) ~ '.personalize_try_' ~ name
            ~ '(value text) returns ' ~ sql_type ~ ' language plpgsql immutable '
            ~ ("set timezone = 'UTC' " if name == 'timestamptz' else '')
            ~ 'as $body$ begin if value is null or ' ~ guard ~ ' then return null; end if; '
            ~ 'return value' ~ via ~ '::' ~ sql_type ~ '; '
            ~ 'exception when others then return null; end $body$'
        ) -%}
    {%- endfor -%}
    {%- for statement in statements -%}
        {%- do run_query(statement) -%}
    {%- endfor -%}
    {{ return('') }}
{%- endmacro %}

{#- The call of one of those functions on `expression` (text). -#}
{% macro postgres_try_cast(name, expression) -%}
    {{ adapter.quote(target.schema) }}.personalize_try_{{ name }}(cast({{ expression }} as text))
{%- endmacro %}
