{#-
    connected_components(edges_relation, left_column, right_column, iterations): for an undirected graph
    given as an edge relation, one row per node with `component_node`, the smallest node of its connected
    component.

    Plain SQL label propagation, unrolled `iterations` times, so it runs on any warehouse (no recursive
    CTEs, no procedural loops). Each round every node takes the smallest label among itself and its
    neighbours; a component of diameter d converges in d rounds. Self-loops are added so that each round
    reads the previous round once (a CTE read twice may be computed twice). Whether the rounds were
    enough is checked by the test `assert_identity_components_converged`.
-#}
{% macro connected_components(edges_relation, left_column, right_column, iterations) -%}
with undirected_edges as (

    select {{ left_column }} as node, {{ right_column }} as neighbour from {{ edges_relation }}
    union
    select {{ right_column }} as node, {{ left_column }} as neighbour from {{ edges_relation }}
    union
    select {{ left_column }} as node, {{ left_column }} as neighbour from {{ edges_relation }}
    union
    select {{ right_column }} as node, {{ right_column }} as neighbour from {{ edges_relation }}

),

labels_0 as (

    select node, min(neighbour) as label
    from undirected_edges
    group by node

),
{% for round in range(1, iterations + 1) %}
labels_{{ round }} as (

    select
        undirected_edges.node,
        min(labels_{{ round - 1 }}.label) as label
    from undirected_edges
    inner join labels_{{ round - 1 }}
        on undirected_edges.neighbour = labels_{{ round - 1 }}.node
    group by undirected_edges.node

){% if not loop.last %},{% endif %}
{% endfor %}

select
    node,
    label as component_node
from labels_{{ iterations }}
{%- endmacro %}
