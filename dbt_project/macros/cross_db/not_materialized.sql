{#-
    not_materialized(): the hint `with name as not_materialized() (...)` that asks the planner to inline a CTE
    into every query that reads it instead of computing it once into a temporary result.

    The base_ staging models read their parsed rows two or three times (the keys that repeat, then the
    rows with and without a repeated key). Held in memory, those rows are the width of the raw table: at a
    million customers, 13 GB of web events that DuckDB spilled to disk and read back, the dearest step of
    the whole staging build. Inlined, each reader scans the raw files again and keeps only the columns it
    needs, which costs a little more CPU and no memory. Only DuckDB and PostgreSQL (12+) accept the hint;
    elsewhere it renders nothing and the planner decides.
-#}
{% macro not_materialized() -%}
    {{ return(adapter.dispatch('not_materialized', 'personalize')()) }}
{%- endmacro %}

{% macro default__not_materialized() -%}
{%- endmacro %}

{% macro duckdb__not_materialized() -%}
    not materialized
{%- endmacro %}

{% macro postgres__not_materialized() -%}
    not materialized
{%- endmacro %}

{#-
    materialized_hint(): the opposite hint, `with name as materialized_hint() (...)`: compute the CTE once, as
    written, before the query that reads it. int_identity_record_edges limits its records to a few keys with
    a semi-join and then joins the data clock; inlined, DuckDB moves the clock's cross join below the
    semi-join, then builds its hash table on the millions of versions instead of the thousands of keys (1.5
    of 2.5 s CPU at a million customers). Only DuckDB and PostgreSQL (12+) accept the hint.
-#}
{% macro materialized_hint() -%}
    {{ return(adapter.dispatch('materialized_hint', 'personalize')()) }}
{%- endmacro %}

{% macro default__materialized_hint() -%}
{%- endmacro %}

{% macro duckdb__materialized_hint() -%}
    materialized
{%- endmacro %}

{% macro postgres__materialized_hint() -%}
    materialized
{%- endmacro %}

{#-
    materialized_subquery(name): a derived table whose query the planner computes first, as written, before
    the joins around it: `from {% call materialized_subquery('resolved') %} select ... {% endcall %} as x`
    renders `from (with resolved as materialized_hint() (select ...) select * from resolved) as x`.

    The person_* macros use it to attribute facts to persons (int_identity_map) before the facts fan out to
    the cutoffs. DuckDB cannot estimate a range join's output (orders x cutoffs: 95 rows estimated, 15M
    real), so when the person lookup could move past the fan-out it built its hash tables on the (fact,
    cutoff) rows instead of the identity map: at a million customers, 4 to 6 GB for each of the order,
    ESP and product-event lookups, and ml_training_examples did not fit in 16 GB.
-#}
{% macro materialized_subquery(name) -%}
    (
        with {{ name }} as {{ materialized_hint() }} (
            {{ caller() }}
        )

        select * from {{ name }}
    )
{%- endmacro %}
