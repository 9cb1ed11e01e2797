{#-
    loaded_after_this(column): for an incremental model built from a model that stamps the rows it writes
    with loaded_at (base_shop__orders, base_web__events, base_esp__events, the identity models), the
    condition on the upstream rows that this model has not processed yet: `column` (default `loaded_at`;
    qualify it when a join makes it ambiguous) later than the latest loaded_at this model holds (its own
    rows carry the start of the run that wrote them, which is after every upstream row it read then).
    Looked up when the model compiles and
    written in as a constant, so the warehouse skips the blocks of older rows. Outside an incremental run,
    or before dbt executes, or on an empty model, it is `1 = 1`. In a unit test, where `this` is a CTE of
    the test's query that cannot be looked up beforehand, it is the same condition as a subquery.
-#}
{% macro loaded_after_this(column='loaded_at') -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return('1 = 1') }}
    {%- endif -%}
    {%- if (this | string).startswith('__dbt__cte__') -%}
        {%- set latest = '(select max(loaded_at) from ' ~ this ~ ')' -%}
        {{ return('(' ~ latest ~ ' is null or ' ~ column ~ ' > ' ~ latest ~ ')') }}
    {%- endif -%}
    {%- set latest = run_query('select max(loaded_at) from ' ~ this).columns[0].values()[0] -%}
    {%- if latest is none -%}
        {{ return('1 = 1') }}
    {%- endif -%}
    {{ column }} > cast('{{ latest }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{#-
    new_and_released_events(new_rows, columns): for an incremental event base_ model (base_web__events,
    base_esp__events), the rows to rank again (new_and_loaded_rows on event_id): the parsed rows of new landing
    files, the deliveries already held of their event_ids, and the events held as future_dated that the data
    clock has caught up with, which turn clean. An event still held keeps its row untouched. The caller's
    query must have a `clock` CTE (stg_data_clock).
-#}
{% macro new_and_released_events(new_rows, columns) -%}
    {{ new_and_loaded_rows(
        new_rows, 'event_id', columns,
        loaded_reason="case when loaded.quarantine_reason = 'future_dated' and loaded.event_at < clock.valid_until_at
            then null else loaded.quarantine_reason end",
        loaded_joins='cross join clock',
        held_keys="select held.event_id from " ~ this ~ " as held cross join clock
            where held.quarantine_reason = 'future_dated' and held.event_at < clock.valid_until_at"
    ) }}
{%- endmacro %}
