{#-
    new_deliveries_filter(base_relation): for an incremental event staging model (stg_web__events,
    stg_esp__events) built from its base_ model, the condition on base_ rows that selects what the run must
    (re)write: the rows of landing files this model has not loaded yet (`source_file`), and the rows later
    than the latest event it holds (events held back as future_dated become clean only once the data clock
    has moved past them, and then they lie after everything already loaded). A new winner among an event's
    deliveries is in a new file, and the merge on event_id replaces the older row; a delivery in a new file
    that loses changes nothing.

    Both are looked up when the model compiles and written into its SQL as constants, so the warehouse can
    filter the base_ table column by column (DuckDB skips the wide columns of the rows it drops) instead of
    joining every row against a key set. Outside an incremental run, or before dbt executes, it is `1 = 1`.
-#}
{% macro new_deliveries_filter(base_relation) -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return('1 = 1') }}
    {%- endif -%}
    {%- set new_files = run_query(
        'select distinct source_file from ' ~ base_relation ~ ' where source_file is not null '
        ~ 'except select distinct source_file from ' ~ this
    ).columns[0].values() -%}
    {%- set latest = run_query('select max(event_at) from ' ~ this).columns[0].values()[0] -%}
    (
        {%- if new_files | length > 0 %}
        source_file in (
            {%- for file in new_files | sort %}
            '{{ file | replace("'", "''") }}'{{ ',' if not loop.last }}
            {%- endfor %}
        )
        {%- else %}
        1 = 0
        {%- endif %}
        {%- if latest is none %}
        or event_at is not null
        {%- else %}
        or event_at > cast('{{ latest }}' as {{ dbt.type_timestamp() }})
        {%- endif %}
    )
{%- endmacro %}

{#-
    loaded_after_this(): for an incremental model built from a model that stamps the rows it writes with
    loaded_at (base_shop__orders), the condition on the upstream rows that this model has not processed yet:
    `loaded_at` later than the latest loaded_at this model holds (its own rows carry the start of the run
    that wrote them, which is after every upstream row it read then). Looked up when the model compiles and
    written in as a constant, so the warehouse skips the blocks of older rows. Outside an incremental run,
    or before dbt executes, or on an empty model, it is `1 = 1`.
-#}
{% macro loaded_after_this() -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return('1 = 1') }}
    {%- endif -%}
    {%- set latest = run_query('select max(loaded_at) from ' ~ this).columns[0].values()[0] -%}
    {%- if latest is none -%}
        {{ return('1 = 1') }}
    {%- endif -%}
    loaded_at > cast('{{ latest }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}
