{#-
    key_digest(expression): a compact stand-in for a text key in large group-bys and joins: equal keys give
    equal digests; two different keys may rarely share one. Use it only where such a collision is harmless
    (see repeated_key_digests: it can only send a row to be ranked with no rival). On DuckDB a 64-bit hash,
    which groups and joins tens of millions of keys several times faster than their text; elsewhere the key
    itself.
-#}
{% macro key_digest(expression) -%}
    {{ return(adapter.dispatch('key_digest', 'personalize')(expression)) }}
{%- endmacro %}

{% macro default__key_digest(expression) -%}
    {{ expression }}
{%- endmacro %}

{% macro duckdb__key_digest(expression) -%}
    hash({{ expression }})
{%- endmacro %}
