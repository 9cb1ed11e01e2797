{#-
    connected_components(edges_relation, left_column, right_column, iterations): for an undirected graph
    given as an edge relation, one row per node with `component_node`, the smallest node of its connected
    component.

    Plain SQL label propagation with pointer jumping, unrolled `iterations` times, so it runs on any
    warehouse (no recursive CTEs, no procedural loops). Nodes are numbered in sort order first, so every
    round joins and compares integers rather than long text, and the smallest number is the smallest node.
    Nodes whose only edges are self-edges are their own component and skip the rounds altogether. Each round
    every linked node takes the smallest label among itself and its neighbours (hooking), then the label of
    that label (jumping): a label is always a node of the same component no larger than the node, so
    jumping only ever moves it closer to the component's smallest node, and a long chain converges in about
    log2 of its length rounds instead of its length. Whether the rounds were enough is checked by the test
    `assert_identity_components_converged`.

    The labels are a function of the component alone (its smallest node), so running the macro over any
    union of whole components gives those components' rows of a run over the whole graph
    (int_identity_components' incremental builds rely on that).
-#}
{% macro connected_components(edges_relation, left_column, right_column, iterations) -%}
with {{ connected_components_ctes(edges_relation, left_column, right_column, iterations) }}

select
    node,
    component_node
from labelled_nodes
{%- endmacro %}

{#-
    connected_components_ctes(...): the CTEs of connected_components, without the leading `with`, ending in
    `labelled_nodes` (node, component_node); for a model that prepares its edges in CTEs of its own.
    edges_relation may name one of those CTEs.
-#}
{% macro connected_components_ctes(edges_relation, left_column, right_column, iterations) -%}
edge_nodes as (

    select {{ left_column }} as node from {{ edges_relation }}
    union
    select {{ right_column }} as node from {{ edges_relation }}

),

node_ids as (

    select
        node,
        row_number() over (order by node) as node_id
    from edge_nodes

),

links as (

    select
        left_ids.node_id as node_id,
        right_ids.node_id as neighbour_id
    from {{ edges_relation }} as edges
    inner join node_ids as left_ids
        on edges.{{ left_column }} = left_ids.node
    inner join node_ids as right_ids
        on edges.{{ right_column }} = right_ids.node
    where edges.{{ left_column }} <> edges.{{ right_column }}

),

undirected_links as (

    -- Both directions of every link, and a self-loop per linked node so that a round's minimum includes the
    -- node's own label.
    select node_id, neighbour_id from links
    union
    select neighbour_id as node_id, node_id as neighbour_id from links
    union
    select node_id, node_id as neighbour_id from links
    union
    select neighbour_id as node_id, neighbour_id from links

),

labels_0 as (

    select
        node_id,
        min(neighbour_id) as label
    from undirected_links
    group by node_id

),
{% for round in range(1, iterations + 1) %}
hooked_{{ round }} as (

    select
        undirected_links.node_id,
        min(labels_{{ round - 1 }}.label) as label
    from undirected_links
    inner join labels_{{ round - 1 }}
        on undirected_links.neighbour_id = labels_{{ round - 1 }}.node_id
    group by undirected_links.node_id

),

labels_{{ round }} as (

    select
        hooked.node_id,
        least(hooked.label, coalesce(label_of_label.label, hooked.label)) as label
    from hooked_{{ round }} as hooked
    left join hooked_{{ round }} as label_of_label
        on hooked.label = label_of_label.node_id

),
{% endfor %}

labelled_nodes as (

    select
        node_ids.node,
        coalesce(component_ids.node, node_ids.node) as component_node
    from node_ids
    left join labels_{{ iterations }}
        on node_ids.node_id = labels_{{ iterations }}.node_id
    left join node_ids as component_ids
        on labels_{{ iterations }}.label = component_ids.node_id

)
{%- endmacro %}
