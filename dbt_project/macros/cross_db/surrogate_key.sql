{#-
    surrogate_key(columns): a stable text key from a list of column expressions.

    md5 over the values joined by '|', with null spelled as '_null_' so that (null, 'a') and ('', 'a')
    differ. Same idea as dbt_utils.generate_surrogate_key, which we cannot install; dbt's own
    cross-database `dbt.hash`, `dbt.concat` and `dbt.type_string` make it portable.
-#}
{% macro surrogate_key(columns) -%}
    {%- set parts = [] -%}
    {%- for column in columns -%}
        {%- do parts.append("coalesce(cast(" ~ column ~ " as " ~ dbt.type_string() ~ "), '_null_')") -%}
        {%- if not loop.last %}{%- do parts.append("'|'") -%}{%- endif -%}
    {%- endfor -%}
    {{ dbt.hash(dbt.concat(parts)) }}
{%- endmacro %}
