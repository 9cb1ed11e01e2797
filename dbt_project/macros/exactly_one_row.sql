{#-
    Generic test exactly_one_row(model): the model has one row, no more and no fewer. Written as a count
    rather than `unique` on a constant, which PostgreSQL rejects (a literal in GROUP BY is a column position).
-#}
{% test exactly_one_row(model) %}

select row_count
from (select count(*) as row_count from {{ model }}) as counted
where row_count != 1

{% endtest %}
