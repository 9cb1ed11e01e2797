{#-
    raw_values(columns, prefix=''): the raw text of a row as `column=value; column=value`, with missing values
    as `column=` followed by nothing. Quarantine rows carry it so a rejected row can be inspected and fixed
    at the source without going back to the file. With a prefix, the values are read from columns named
    <prefix><column> (see raw_columns_as) while the labels stay the contract column names.
-#}
{% macro raw_values(columns, prefix='') -%}
    {%- set parts = [] -%}
    {%- for column in columns -%}
        {%- do parts.append("'" ~ ('; ' if not loop.first else '') ~ column ~ "='") -%}
        {%- do parts.append("coalesce(cast(" ~ prefix ~ column ~ " as " ~ dbt.type_string() ~ "), '')") -%}
    {%- endfor -%}
    {{ dbt.concat(parts) }}
{%- endmacro %}

{#-
    raw_columns_as(columns): `column as raw__column, ...`, the delivered text carried next to the parsed
    columns of the same names until the quarantine verdict is known (see quarantined_raw_values).
-#}
{% macro raw_columns_as(columns) -%}
    {%- for column in columns -%}
        {{ column }} as raw__{{ column }}{{ ',' if not loop.last }}
    {% endfor -%}
{%- endmacro %}

{#-
    quarantined_raw_values(columns): raw_values over the raw__ columns, for quarantined rows only (null for
    clean rows). Building the text is one of the dearest steps of a large event table, and only the
    quarantine (quality_quarantined_rows) reads it.
-#}
{% macro quarantined_raw_values(columns) -%}
    case when quarantine_reason is not null then {{ raw_values(columns, prefix='raw__') }} end
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
    stored_raw_row_key(delivered_column, clean_column): the raw_row_key a base model whose natural key is one
    column stores: null where the cleaned key (clean_column: trimmed, empty as null) is the delivered text
    itself, else the delivered key (raw_row_key). A near-unique text column is among the dearest to write, and
    on nearly every event row the two are the same string: this way it is written once. What is left are
    the keys the cleaned column cannot give back: delivered with spaces around them, empty or missing.
    Readers get the delivered key back with read_raw_row_key, never from the column alone.
-#}
{% macro stored_raw_row_key(delivered_column, clean_column) -%}
    case when {{ clean_column }} = {{ delivered_column }} then null else {{ raw_row_key([delivered_column]) }} end
{%- endmacro %}

{#-
    read_raw_row_key(clean_column=none, relation=none): the natural key of a base model's row as delivered.
    For a model that stores it with stored_raw_row_key, give its cleaned key column: the stored key where
    there is one, else the cleaned key. For the others (keys of several columns, which their cleaned
    columns cannot give back as delivered), the raw_row_key column.
-#}
{% macro read_raw_row_key(clean_column=none, relation=none) -%}
    {%- set prefix = relation ~ '.' if relation else '' -%}
    {%- if clean_column -%}
        coalesce({{ prefix }}raw_row_key, {{ prefix }}{{ clean_column }})
    {%- else -%}
        {{ prefix }}raw_row_key
    {%- endif -%}
{%- endmacro %}

{#-
    row_fingerprint(columns): a cheap deterministic hash of a row's values (the raw values, or any columns),
    used to order otherwise tied rows (verbatim duplicates) without sorting on long strings, and as a
    content digest that picks the candidate rows of an exact comparison (quality_quarantined_rows), where a
    collision costs time, never a wrong result.
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
