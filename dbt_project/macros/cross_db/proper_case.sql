{#-
    proper_case(expression): collapse runs of whitespace, trim, and capitalise each word ("  mARY  anne"
    -> "Mary Anne"). Most warehouses have initcap; DuckDB does not.
-#}
{% macro proper_case(expression) -%}
    {{ return(adapter.dispatch('proper_case', 'personalize')(expression)) }}
{%- endmacro %}

{% macro default__proper_case(expression) -%}
    nullif(initcap(trim(regexp_replace({{ expression }}, '\\s+', ' ', 'g'))), '')
{%- endmacro %}

{% macro postgres__proper_case(expression) -%}
    {#- Macro text is not a Jinja string: the backslash reaches PostgreSQL as written. -#}
    nullif(initcap(trim(regexp_replace({{ expression }}, '\s+', ' ', 'g'))), '')
{%- endmacro %}

{% macro duckdb__proper_case(expression) -%}
    nullif(array_to_string(list_transform(
        string_split(lower(trim(regexp_replace({{ expression }}, '\s+', ' ', 'g'))), ' '),
        lambda word: upper(word[1]) || word[2:]
    ), ' '), '')
{%- endmacro %}
