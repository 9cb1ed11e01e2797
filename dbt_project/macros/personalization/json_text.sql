{#-
    json_string(expression): the text `expression` as a JSON string literal, double quotes included, with
    backslashes and double quotes escaped. chr(34) and chr(92) stand for " and \ because backslashes in
    SQL string literals mean different things on different warehouses. Null stays null.
-#}
{% macro json_string(expression) -%}
    {{ dbt.concat([
        'chr(34)',
        'replace(replace(' ~ expression ~ ', chr(92), chr(92) || chr(92)), chr(34), chr(92) || chr(34))',
        'chr(34)',
    ]) }}
{%- endmacro %}

{#-
    json_string_array_agg(expression, order_by_clause): aggregate function rendering the group's values of
    the text `expression` as a JSON array of strings, e.g. ["P1","P2"], in the order of `order_by_clause`
    (e.g. "order by product_id"). Nulls are skipped; a group of only nulls gives [].
-#}
{% macro json_string_array_agg(expression, order_by_clause) -%}
    {{ dbt.concat([
        "'['",
        "coalesce(" ~ dbt.listagg(json_string(expression), "','", order_by_clause) ~ ", '')",
        "']'",
    ]) }}
{%- endmacro %}

{#-
    json_number(expression, scale=2): a number as JSON number text with `scale` decimals, "null" when null.
-#}
{% macro json_number(expression, scale=2) -%}
    coalesce(cast(cast({{ expression }} as numeric(18, {{ scale }})) as {{ dbt.type_string() }}), 'null')
{%- endmacro %}
