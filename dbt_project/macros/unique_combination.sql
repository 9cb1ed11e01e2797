{#-
    Generic test unique_combination(model, columns): no two rows share the same values in all of
    `columns` (a composite primary key). Returns each repeated combination with its row count.
-#}
{% test unique_combination(model, columns) %}

select
    {{ columns | join(', ') }},
    count(*) as row_count
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1

{% endtest %}
