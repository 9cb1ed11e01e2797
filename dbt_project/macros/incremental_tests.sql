{#-
    Incremental models of this project carry `loaded_at`, the start of the dbt invocation that wrote the row
    (this_run_loaded_at). It is run metadata, the one column in which an incremental run and a full refresh
    differ, and it serves two purposes: a downstream incremental model picks up the rows written since its
    own last run (`loaded_at` greater than its own latest), and a data test of an incremental build can be
    limited to the rows this run wrote (below).
-#}

{#-
    this_run_loaded_at(): the start of the current dbt invocation as a UTC timestamp literal, to the
    microsecond so that two invocations never share it. Every model and test of one invocation renders the
    same value. Outside dbt (sqlfluff's templater) it renders current_timestamp.
-#}
{% macro this_run_loaded_at() -%}
    {%- if run_started_at is defined -%}
        cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as {{ dbt.type_timestamp() }})
    {%- else -%}
        cast({{ dbt.current_timestamp() }} as {{ dbt.type_timestamp() }})
    {%- endif -%}
{%- endmacro %}

{#-
    rows_written_by_this_run(): for the data test being compiled, the predicate that limits it to the rows
    the current invocation wrote into an incremental model, or `1 = 1` (every row).

    A test opts in with the placeholder `__rows_written_by_this_run__` in its `where` config (it may be
    combined with other conditions: `__rows_written_by_this_run__ and not is_unknown_product`);
    get_where_subquery below substitutes it. The limit applies only when all of these hold, else every row
    is tested:
      - the command is `dbt build` without --full-refresh (a full refresh writes, and so tests, every row;
        `dbt test` on its own tests every row);
      - the tested model is incremental, has `loaded_at`, and is selected in this invocation, so that it
        ran (or was skipped together with its tests) just before the test; or it is a view over such a
        model that passes its rows' loaded_at through, and names it in meta `loaded_at_from` (see
        loading_model): the view's rows of this run are those the incremental model wrote.

    Why testing only the rows of this run is equivalent to testing every row, and where it is allowed:
      - The rows not written by this run were written, and tested, by an earlier build: every incremental
        model here rewrites a row whenever an input it depends on changes (see each model), so an old row
        is exactly what a full refresh would hold, and it passed its tests when it was written. A failed
        test fails the build; after fixing the cause, run with --full-refresh, which tests every row again.
      - So a ROW-LOCAL property (not_null, accepted_values, an expression over the row's own columns, a
        lookup that the model recomputes whenever the looked-up table changes) holds for every row iff it
        holds for the new rows.
      - UNIQUENESS is not row-local: the test unique_across_runs checks that the new keys are unique among
        themselves AND absent from the old rows. Together with the old rows being unique (tested before),
        that is uniqueness over every row.
      - Tests that aggregate over the whole table (reconciliation, relationships into the model) are never
        limited.
-#}
{% macro rows_written_by_this_run() -%}
    {#- `model` is the test node being compiled; its parents are the models it tests. -#}
    {%- set tested_node_ids = model.depends_on.nodes -%}
    {%- set ns = namespace(limited=false) -%}
    {%- if execute and flags.WHICH == 'build' and not flags.FULL_REFRESH -%}
        {%- for node_id in tested_node_ids -%}
            {%- set node = loading_model(graph.nodes.get(node_id)) -%}
            {%- if node is not none
                and 'loaded_at' in node.columns
                and node.unique_id in selected_resources -%}
                {%- set ns.limited = true -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if ns.limited -%}
        loaded_at = {{ this_run_loaded_at() }}
    {%- else -%}
        1 = 1
    {%- endif -%}
{%- endmacro %}

{#-
    get_where_subquery(relation): dbt's own hook for a test's `where` config (see dbt's where_subquery.sql),
    extended by one placeholder, `__rows_written_by_this_run__` (macro rows_written_by_this_run). Tests
    without the placeholder behave exactly as in dbt.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where and '__rows_written_by_this_run__' in where -%}
        {%- set where = where | replace(
            '__rows_written_by_this_run__', rows_written_by_this_run()
        ) -%}
    {%- endif -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{#-
    unique_across_runs(model, column_name, combination_of_columns): `column_name` (an expression), or the
    combination of the columns listed in `combination_of_columns` instead, is unique over every row of the
    model. In a `dbt build` of an incremental model (see rows_written_by_this_run) it checks the rows written
    by this run only: their keys are unique among themselves and none of them is held by an older row,
    which, with the older rows unique (they passed this test when written), is uniqueness over every row.
    When the model is merged with delete+insert on exactly this key (unique_key), the merge itself deleted
    every older row holding a key the run wrote before inserting the new rows, so no older row can hold one
    and the lookup among the older rows (a scan of the whole model) is left out. In any other invocation it
    is dbt's `unique` over every row. Rows with a null in the key are ignored, as in `unique`. Repeated keys
    are found through their digests first (repeated_key_digests), which for the 31M web event ids of a
    million customers costs about 4 CPU-s against 9 for grouping their digests, and more for grouping the ids. A combination is compared column by column, never as one
    concatenated text (only its digest is, where a collision costs time, not a verdict), so that keys
    which concatenate alike stay apart, and no stored column has to be a hash of the others.
-#}
{% test unique_across_runs(model, column_name=none, combination_of_columns=none) %}
    {%- set this_run = rows_written_by_this_run() %}
    {%- set key_columns = combination_of_columns if combination_of_columns else [column_name] %}
    {%- set key_fields = [] %}
    {%- set separated_fields = [] %}
    {%- for column in key_columns %}
        {%- do key_fields.append('unique_field' if key_columns | length == 1 else 'unique_field_' ~ loop.index) %}
        {%- do separated_fields.extend([key_fields[-1]] if loop.first else ["'|'", key_fields[-1]]) %}
    {%- endfor %}
    {%- set digested_key = key_fields[0] if key_fields | length == 1 else dbt.concat(separated_fields) %}
    {%- set digest = key_digest(digested_key) %}

with new_keys as {{ not_materialized() }} (

    select
        {%- for column in key_columns %}
        {{ column }} as {{ key_fields[loop.index0] }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ model }}
    where
        {{ this_run }}
        {%- for column in key_columns %}
        and {{ column }} is not null
        {%- endfor %}

),

repeated_digests as (

    -- Rows that share a key share its digest (key_digest), and finding the digests that repeat among millions
    -- is cheaper than grouping the text; the exact count below looks only at keys whose digest repeats, so a
    -- digest collision costs a little time, never a wrong verdict.
    {{ repeated_key_digests('new_keys', digested_key) }}

),

repeated_new_keys as (

    select
        {{ key_fields | join(', ') }},
        count(*) as n_records
    from new_keys
    where {{ digest }} in (select repeated_digests.key_digest from repeated_digests)
    group by {{ key_fields | join(', ') }}
    having count(*) > 1

),

keys_held_by_older_rows as (

    {%- if this_run != '1 = 1' and not merged_on_columns(key_columns) %}
        select
            {%- for column in key_columns %}
            older.{{ column }} as {{ key_fields[loop.index0] }},
            {%- endfor %}
            2 as n_records
        from {{ model }} as older
        inner join new_keys
            on
                {%- for column in key_columns %}
                {{ 'and ' if not loop.first }}older.{{ column }} = new_keys.{{ key_fields[loop.index0] }}
                {%- endfor %}
        where not ({{ this_run }})
    {%- else %}
        -- Every row is new in this invocation, or the delete+insert merge on this key removed the older rows
        -- holding the new keys: nothing older to compare with.
        select
            {{ key_fields | join(', ') }},
            n_records
        from repeated_new_keys
        where 1 = 0
    {%- endif %}

)

select * from repeated_new_keys
union all
select * from keys_held_by_older_rows

{% endtest %}

{#-
    merged_on_columns(key_columns): for the data test being compiled, whether the model it tests is
    incremental with incremental_strategy delete+insert and unique_key exactly the list `key_columns`, or a
    view over such a model (loading_model). Such a merge deletes every row whose key is among the new rows'
    keys before inserting them (see unique_across_runs); a view that keeps a subset of the model's rows,
    with their key unchanged, then holds no older row of a new key either.
-#}
{% macro merged_on_columns(key_columns) -%}
    {%- set ns = namespace(merged=false) -%}
    {%- for node_id in model.depends_on.nodes -%}
        {%- set node = loading_model(graph.nodes.get(node_id)) -%}
        {%- if node is not none and node.config.incremental_strategy == 'delete+insert' -%}
            {%- set key = node.config.unique_key -%}
            {%- if (key is string and [key] == key_columns) or (key is not string and key is iterable and key | list == key_columns) -%}
                {%- set ns.merged = true -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(ns.merged) }}
{%- endmacro %}

{#-
    loading_model(node): the incremental model whose builds write the rows of model `node`, as a graph node:
    `node` itself when it is an incremental model; for a view that passes through the rows and loaded_at of
    one incremental model (stg_web__events over base_web__events), the model named in its meta
    `loaded_at_from`; else none.
-#}
{% macro loading_model(node) -%}
    {%- if node is none or node.resource_type != 'model' -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if node.config.materialized == 'view' and node.config.meta.get('loaded_at_from') -%}
        {%- set node = graph.nodes.get('model.' ~ project_name ~ '.' ~ node.config.meta['loaded_at_from']) -%}
    {%- endif -%}
    {%- if node is none or node.config.materialized != 'incremental' -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(node) }}
{%- endmacro %}
