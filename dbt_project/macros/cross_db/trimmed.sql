{#-
    trimmed(expression): `trim(expression)`, the text without its leading and trailing spaces.

    On DuckDB, trim copies every string it is given, and with a handful of trimmed columns per row it was
    the dearest expression of the event staging models at millions of rows. Almost no delivered value has
    anything to trim, so the DuckDB version returns the text as it is unless it starts or ends with a space
    or holds a non-ASCII character (DuckDB's trim also strips Unicode spaces such as U+00A0), and only then
    calls trim: the same result for every input, without the copy.
-#}
{% macro trimmed(expression) -%}
    {{ return(adapter.dispatch('trimmed', 'personalize')(expression)) }}
{%- endmacro %}

{% macro default__trimmed(expression) -%}
    trim({{ expression }})
{%- endmacro %}

{% macro duckdb__trimmed(expression) -%}
    case
        when {{ expression }} like ' %' or {{ expression }} like '% ' or strlen({{ expression }}) <> length({{ expression }})
            then trim({{ expression }})
        else {{ expression }}
    end
{%- endmacro %}
