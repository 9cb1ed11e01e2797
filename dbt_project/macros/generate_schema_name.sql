{#-
    Use a model's custom schema name as-is (staging, marts, ml, ...) instead of dbt's default
    `<target schema>_<custom>`, so that table names such as `marts.customer_360` and `ml.churn_scores`
    are the same on every target.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
