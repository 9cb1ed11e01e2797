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
