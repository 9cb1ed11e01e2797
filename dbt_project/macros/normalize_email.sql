{#-
    normalize_email(expression): the identity form of an email address: trimmed and lowercased, empty as
    null. Further rules (e.g. dropping +tags or gmail dots) would go here, behind a var, because they merge
    people and must be a deliberate choice.
-#}
{% macro normalize_email(expression) -%}
    nullif(lower({{ trimmed(expression) }}), '')
{%- endmacro %}

{#-
    is_valid_email(normalized): true when a normalized email is syntactically deliverable: one @, a local
    part and a dotted domain with a 2+ letter top-level label, no spaces.
-#}
{% macro is_valid_email(normalized) -%}
    coalesce({{ regex_matches(normalized, "'[a-z0-9._%+''-]+@[a-z0-9-]+(\\.[a-z0-9-]+)*\\.[a-z]{2,}'") }}, false)
{%- endmacro %}
