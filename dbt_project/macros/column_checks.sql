{#-
    Generic test column_checks(model, not_null, accepted_values, expressions): the row-local checks of a
    model in one scan, instead of one test (one query, one scan of the model, and on a view one run of the
    view's query) per column and property. It fails on exactly the rows the separate tests fail on:
      - not_null: [column, ...]: a row whose column is null (dbt's `not_null`);
      - accepted_values: {column: [value, ...]}: a row whose column is not null and not one of the values
        (dbt's `accepted_values`, which ignores nulls; numbers are compared unquoted);
      - expressions: {name: boolean SQL over the row}: a row where the expression is false (a null counts
        as passing, as in a `where` filter; write `coalesce(...)` to fail on it).
    The test's `where` config (and __rows_written_by_this_run__, see incremental_tests.sql) limits every
    check at once. It returns each failing row once, with `failed_checks` naming every check it fails
    (e.g. `not_null(order_id), accepted_values(status)`) and the values of the checked columns, so a
    failure says which property broke on which row.
-#}
{% test column_checks(model, not_null=[], accepted_values={}, expressions={}) %}
    {%- set checks = [] -%}
    {%- set checked_columns = [] -%}
    {%- for column in not_null -%}
        {%- do checks.append(('not_null(' ~ column ~ ')', column ~ ' is null')) -%}
        {%- if column not in checked_columns %}{% do checked_columns.append(column) %}{% endif -%}
    {%- endfor -%}
    {%- for column, values in accepted_values.items() -%}
        {%- set literals = [] -%}
        {%- for value in values -%}
            {%- do literals.append(value if value is number else "'" ~ (value | string | replace("'", "''")) ~ "'") -%}
        {%- endfor -%}
        {%- do checks.append(('accepted_values(' ~ column ~ ')', column ~ ' not in (' ~ literals | join(', ') ~ ')')) -%}
        {%- if column not in checked_columns %}{% do checked_columns.append(column) %}{% endif -%}
    {%- endfor -%}
    {%- for name, expression in expressions.items() -%}
        {%- do checks.append((name, 'not (' ~ expression ~ ')')) -%}
    {%- endfor -%}
    {%- if checks | length == 0 -%}
        {{ exceptions.raise_compiler_error("column_checks on " ~ model ~ ": give not_null, accepted_values or expressions") }}
    {%- endif %}

with failing_rows as (

    select *
    from {{ model }}
    where
        {%- for name, failure in checks %}
            {{ 'or ' if not loop.first }}coalesce({{ failure }}, false)
        {%- endfor %}

)

select
    {{ dbt.concat(checks_labels(checks)) }} as failed_checks
    {%- for column in checked_columns %},
    {{ column }}
    {%- endfor %}
from failing_rows

{% endtest %}

{#- The label list of column_checks: each failed check's name, comma-separated, as concat() arguments. -#}
{% macro checks_labels(checks) -%}
    {%- set parts = [] -%}
    {%- for name, failure in checks -%}
        {%- do parts.append(
            "case when coalesce(" ~ failure ~ ", false) then '" ~ name | replace("'", "''") ~ ", ' else '' end"
        ) -%}
    {%- endfor -%}
    {{ return(parts) }}
{%- endmacro %}
