{#-
    Shared plumbing of the base_ staging models, so that every source accounts for its raw rows the same way.
-#}

{#-
    is_superseded(relation, key_columns, order_by): true for a clean row that a better row with the same key
    beats: a later version, or a repeated delivery. Quarantined rows are never superseded: they are
    counted as quarantined. `order_by` lists the winner first and must end in a tie-break (row_fingerprint)
    so that verbatim duplicates resolve the same way on every run.
-#}
{% macro is_superseded(relation, key_columns, order_by) -%}
    {{ relation }}.quarantine_reason is null and row_number() over (
        partition by {{ relation }}.quarantine_reason is null
        {%- for column in key_columns %}, {{ relation }}.{{ column }}{% endfor %}
        order by {{ order_by | join(', ') }}
    ) > 1
{%- endmacro %}

{#-
    unloaded_landing_files(source_relation): for an incremental base_ model that loads by landing file, the
    condition on raw rows `_source_file in (<the files of source_relation this model has not loaded yet>)`,
    or `1 = 0` when there are none. The file names are looked up when the model compiles and written into
    its SQL as constants, so the warehouse reads only the new files (on DuckDB the raw view is one branch
    per file, and the branches of loaded files fold away) instead of scanning every raw row for its file.
    In a unit test, whose source is a fixture, the same condition is written in SQL.
-#}
{% macro unloaded_landing_files(source_relation) -%}
    {%- if not execute -%}
        {{ return('1 = 0') }}
    {%- endif -%}
    {%- if (source_relation | string).startswith('__dbt__cte__') -%}
        {#- A unit test's fixture is a CTE of the query, which cannot be read on its own: filter in SQL. -#}
        {{ return('_source_file not in (select distinct loaded.source_file from ' ~ this ~ ' as loaded)') }}
    {%- endif -%}
    {%- set new_files = run_query(
        'select distinct _source_file from ' ~ source_relation ~ ' where _source_file is not null '
        ~ 'except select distinct source_file from ' ~ this
    ).columns[0].values() -%}
    {%- if new_files | length == 0 -%}
        {{ return('1 = 0') }}
    {%- endif -%}
    _source_file in (
        {%- for file in new_files | sort %}
        '{{ file | replace("'", "''") }}'{{ ',' if not loop.last }}
        {%- endfor %}
    )
{%- endmacro %}

{#-
    new_and_loaded_rows(new_rows, key_column, columns, loaded_reason, loaded_joins='', held_keys=none): for an
    incremental base_ model, the rows it must rank again: those parsed from new landing files (`new_rows`),
    and every row the model already holds (`this`, as `loaded`) under a key of a new row or of `held_keys` (a
    query over the model's own rows, such as the ones still held as future_dated). The model keeps each
    delivery parsed with its verdict, so the versions of a key resolve exactly as in a full refresh without
    reading the older landing files again.

    A loaded row's verdict is `loaded_reason`, an expression over `loaded` and `loaded_joins` (joins to what
    decides the verdicts that can change, such as the clock). Its raw_values text is kept while it stays
    quarantined and dropped once it turns clean. A clean row never turns quarantined while landing files are
    only added (the clock only moves forward, orders and products only gain versions), which is why the
    loaded rows need no raw text beyond what the model holds. The loaded rows are found by their key
    column alone and only then read in full (rows_where): the model holds millions of rows, of which a
    run ranks again a few.
-#}
{% macro new_and_loaded_rows(new_rows, key_column, columns, loaded_reason, loaded_joins='', held_keys=none) -%}
    select
        {%- for column in columns %}
        {{ new_rows }}.{{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ new_rows }}

    union all

    select
        {%- for column in columns %}
        {%- if column == 'quarantine_reason' %}
        {{ loaded_reason }} as quarantine_reason
        {%- elif column == 'raw_values' %}
        case when {{ loaded_reason }} is not null then loaded.raw_values end as raw_values
        {%- else %}
        loaded.{{ column }}
        {%- endif %}{{ ',' if not loop.last }}
        {%- endfor %}
    from (
        {%- set rank_again -%}
            {{ key_column }} in (
                select {{ new_rows }}.{{ key_column }} from {{ new_rows }}
                {%- if held_keys %}
                union all
                {{ held_keys }}
                {%- endif %}
            )
        {%- endset %}
        {{ rows_where(this, rank_again) }}
    ) as loaded
    {{ loaded_joins }}
{%- endmacro %}

{#-
    repeated_key_digests(relation, key_expression): the digests (key_digest) of the keys that more than one
    row of `relation` shares, clean or not. An event source repeats only a few percent of its keys, so
    tagging rows with has_repeated_key (a left join to this) lets with_repeated_keys_ranked rank just those
    rows. Counting every row, not only clean ones, needs no parsing beyond the key: it can only add keys
    whose rows are then ranked for nothing. Give it its own CTE.
    Grouping the digests (the portable default) builds a hash table of one entry per key. On DuckDB a
    digest repeats when it equals its neighbour in digest order: sorting tens of millions of 64-bit digests
    costs about 40% less CPU than grouping them (the 31M web events of a million customers: 6 against 10
    CPU-s). Elsewhere that one unpartitioned sort would run on a single worker (Spark moves every row into
    one partition for it), so the other adapters group.
-#}
{% macro repeated_key_digests(relation, key_expression) -%}
    {{ return(adapter.dispatch('repeated_key_digests', 'personalize')(relation, key_expression)) }}
{%- endmacro %}

{% macro default__repeated_key_digests(relation, key_expression) -%}
    select {{ key_digest(key_expression) }} as key_digest
    from {{ relation }}
    group by {{ key_digest(key_expression) }}
    having count(*) > 1
{%- endmacro %}

{#- A null digest equals no neighbour, and matches no key where the digests are joined either. #}
{% macro duckdb__repeated_key_digests(relation, key_expression) -%}
    select distinct ordered_digests.key_digest
    from (
        select
            row_digests.key_digest,
            lag(row_digests.key_digest) over (order by row_digests.key_digest) as previous_digest
        from (select {{ key_digest(key_expression) }} as key_digest from {{ relation }}) as row_digests
    ) as ordered_digests
    where ordered_digests.key_digest = ordered_digests.previous_digest
{%- endmacro %}

{#-
    tagged_by_repeated_key(relation, repeated_keys, key_column): `select <relation>.*, has_repeated_key`,
    where has_repeated_key says the row's key digest is among `repeated_keys` (a CTE of
    repeated_key_digests over the same trimmed key), the flag with_repeated_keys_ranked reads.
-#}
{% macro tagged_by_repeated_key(relation, repeated_keys, key_column) -%}
    select
        {{ relation }}.*,
        {{ repeated_keys }}.key_digest is not null as has_repeated_key
    from {{ relation }}
    left join {{ repeated_keys }}
        on
            {{ key_digest("nullif(" ~ trimmed(relation ~ '.' ~ key_column) ~ ", '')") }}
            = {{ repeated_keys }}.key_digest
{%- endmacro %}

{#-
    with_repeated_keys_ranked(relation, key_columns, order_by): `select <relation>.*, is_superseded`, with
    is_superseded exactly as the is_superseded macro defines it, for large relations that carry
    has_repeated_key (see repeated_key_digests). A row whose key no other row shares is never superseded;
    the window runs over the others only. The relation is read twice; declare its CTEs not_materialized()
    so that neither read holds every row.
-#}
{% macro with_repeated_keys_ranked(relation, key_columns, order_by) -%}
    select
        {{ relation }}.*,
        false as is_superseded
    from {{ relation }}
    where not {{ relation }}.has_repeated_key

    union all

    select
        {{ relation }}.*,
        {{ is_superseded(relation, key_columns, order_by) }} as is_superseded
    from {{ relation }}
    where {{ relation }}.has_repeated_key
{%- endmacro %}
