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
    be matched to earlier ones; those of new files are taken once. The loaded files are deduplicated before
    the anti-join, so its hash table holds a handful of file names rather than one entry per loaded row.
-#}
{% macro landing_file_increment(source_relation, key_column) -%}
    where nullif({{ trimmed(key_column) }}, '') in (
        select nullif({{ trimmed('new_deliveries.' ~ key_column) }}, '')
        from {{ source_relation }} as new_deliveries
        where new_deliveries._source_file not in (select distinct loaded.source_file from {{ this }} as loaded)
        union all
        select held.{{ key_column }} from {{ this }} as held
        where held.quarantine_reason = 'future_dated'
    )
    or (
        nullif({{ trimmed(key_column) }}, '') is null
        and _source_file not in (select distinct loaded.source_file from {{ this }} as loaded)
    )
{%- endmacro %}

{#-
    repeated_key_digests(relation, key_expression): the digests (key_digest) of the keys that more than one
    row of `relation` shares, clean or not. An event source repeats only a few percent of its keys, so
    tagging rows with has_repeated_key (a left join to this) lets with_repeated_keys_ranked rank just those
    rows. Counting every row, not only clean ones, needs no parsing beyond the key: it can only add keys
    whose rows are then ranked for nothing. Give it its own CTE.
-#}
{% macro repeated_key_digests(relation, key_expression) -%}
    select {{ key_digest(key_expression) }} as key_digest
    from {{ relation }}
    group by {{ key_digest(key_expression) }}
    having count(*) > 1
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
