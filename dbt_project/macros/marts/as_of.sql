{#-
    as_of_end_at(as_of_date): the first instant after the as-of date, i.e. the start (UTC) of the next day.
    Marts count a fact when its timestamp is strictly before this, so everything on the as-of date counts.
-#}
{% macro as_of_end_at(as_of_date) -%}
    cast({{ dbt.dateadd('day', 1, as_of_date) }} as {{ dbt.type_timestamp() }})
{%- endmacro %}

{#-
    as_of_window_start_at(as_of_date, days): the first instant of a trailing window of `days` whole days
    that ends with the as-of date (the as-of date is the window's last day).
-#}
{% macro as_of_window_start_at(as_of_date, days) -%}
    cast({{ dbt.dateadd('day', 1 - days, as_of_date) }} as {{ dbt.type_timestamp() }})
{%- endmacro %}

{#-
    is_version_current_at(alias, as_of_date): true for the row of a *_versions model (valid_from_at,
    valid_to_at) that was the current version at the end of the as-of date: written by then, and not yet
    replaced by a version written by then.
-#}
{% macro is_version_current_at(alias, as_of_date) -%}
    (
        {{ alias }}.valid_from_at < {{ as_of_end_at(as_of_date) }}
        and ({{ alias }}.valid_to_at is null or {{ alias }}.valid_to_at >= {{ as_of_end_at(as_of_date) }})
    )
{%- endmacro %}
