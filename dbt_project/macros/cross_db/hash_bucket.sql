{#-
    hash_bucket(expression, buckets): a stable integer in [0, buckets) from the md5 of a text expression.

    The first 8 hex digits of the md5 (32 bits) read as an unsigned integer, modulo `buckets`. md5 is the
    same on every warehouse, so a value lands in the same bucket on DuckDB, PostgreSQL, Snowflake, Spark and
    BigQuery, run after run; only the hex-to-integer conversion differs per adapter. Used for the control
    group (macro control_group_bucket).
-#}
{% macro hash_bucket(expression, buckets) -%}
    {{ return(adapter.dispatch('hash_bucket', 'personalize')(expression, buckets)) }}
{%- endmacro %}

{% macro default__hash_bucket(expression, buckets) -%}
    {#- DuckDB reads '0x...' text as a hexadecimal integer. -#}
    (cast('0x' || substr({{ dbt.hash(expression) }}, 1, 8) as bigint) % {{ buckets }})
{%- endmacro %}

{% macro postgres__hash_bucket(expression, buckets) -%}
    {#- 'x' + 16 hex digits casts to bit(64), which PostgreSQL converts to bigint; padding keeps it positive. -#}
    mod(cast(cast('x' || lpad(substr({{ dbt.hash(expression) }}, 1, 8), 16, '0') as bit(64)) as bigint), {{ buckets }})
{%- endmacro %}

{% macro snowflake__hash_bucket(expression, buckets) -%}
    mod(to_number(substr({{ dbt.hash(expression) }}, 1, 8), 'XXXXXXXX'), {{ buckets }})
{%- endmacro %}

{% macro spark__hash_bucket(expression, buckets) -%}
    pmod(cast(conv(substr({{ dbt.hash(expression) }}, 1, 8), 16, 10) as bigint), {{ buckets }})
{%- endmacro %}

{% macro bigquery__hash_bucket(expression, buckets) -%}
    mod(cast(concat('0x', substr({{ dbt.hash(expression) }}, 1, 8)) as int64), {{ buckets }})
{%- endmacro %}
