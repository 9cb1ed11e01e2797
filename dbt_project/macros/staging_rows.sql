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
    landing_file_increment(source_relation, key_column): the where-clause of an incremental base_ model that
    loads by landing file. It picks every raw delivery of each key that appears in a file not loaded yet,
    or that is still held as future_dated (the clock may have caught up), so the model reprocesses those
    keys with all their deliveries and ends up equal to a full refresh. Deliveries without a key cannot
    be matched to earlier ones; those of new files are taken once.
-#}
{% macro landing_file_increment(source_relation, key_column) -%}
    where nullif(trim({{ key_column }}), '') in (
        select nullif(trim(new_deliveries.{{ key_column }}), '')
        from {{ source_relation }} as new_deliveries
        where new_deliveries._source_file not in (select loaded.source_file from {{ this }} as loaded)
        union all
        select held.{{ key_column }} from {{ this }} as held
        where held.quarantine_reason = 'future_dated'
    )
    or (
        nullif(trim({{ key_column }}), '') is null
        and _source_file not in (select loaded.source_file from {{ this }} as loaded)
    )
{%- endmacro %}
