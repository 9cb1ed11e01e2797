{#-
    raw_values(columns): the raw text of a row as `column=value; column=value`, with missing values as
    `column=` followed by nothing. Quarantine rows carry it so a rejected row can be inspected and fixed
    at the source without going back to the file.
-#}
{% macro raw_values(columns) -%}
    {%- set parts = [] -%}
    {%- for column in columns -%}
        {%- do parts.append("'" ~ ('; ' if not loop.first else '') ~ column ~ "='") -%}
        {%- do parts.append("coalesce(cast(" ~ column ~ " as " ~ dbt.type_string() ~ "), '')") -%}
    {%- endfor -%}
    {{ dbt.concat(parts) }}
{%- endmacro %}

{#- raw_row_key(columns): the natural key of a raw row as delivered: raw values joined by '|'. -#}
{% macro raw_row_key(columns) -%}
    {%- set parts = [] -%}
    {%- for column in columns -%}
        {%- if not loop.first -%}{%- do parts.append("'|'") -%}{%- endif -%}
        {%- do parts.append("coalesce(" ~ column ~ ", '')") -%}
    {%- endfor -%}
    {{ dbt.concat(parts) if parts | length > 1 else parts[0] }}
{%- endmacro %}

{#-
    row_fingerprint(columns): a cheap deterministic hash of a row's raw values, used to order otherwise
    tied rows (verbatim duplicates) without sorting on long strings.
-#}
{% macro row_fingerprint(columns) -%}
    {{ return(adapter.dispatch('row_fingerprint', 'personalize')(columns)) }}
{%- endmacro %}

{% macro default__row_fingerprint(columns) -%}
    {{ surrogate_key(columns) }}
{%- endmacro %}

{% macro duckdb__row_fingerprint(columns) -%}
    hash({{ columns | join(', ') }})
{%- endmacro %}
