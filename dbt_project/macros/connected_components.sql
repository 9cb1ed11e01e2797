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

    Only the first `whole_graph_rounds` rounds (default 2) go over the whole graph: identity components are
    small and nearly all have converged by then (all of them, at 100k customers, after 2). The remaining
    rounds go over the components that have not, found exactly (settled_labels), so they cost next to
    nothing, and the result is that of `iterations` rounds over the whole graph.

    The labels are a function of the component alone (its smallest node), so running the macro over any
    union of whole components gives those components' rows of a run over the whole graph
    (int_identity_components' incremental builds rely on that).
-#}
{% macro connected_components(edges_relation, left_column, right_column, iterations, whole_graph_rounds=2) -%}
with {{ connected_components_ctes(edges_relation, left_column, right_column, iterations, whole_graph_rounds) }}

select
    node,
    component_node
from labelled_nodes
{%- endmacro %}

{#-
    connected_components_ctes(...): the CTEs of connected_components, without the leading `with`, ending in
    `labelled_nodes` (node, component_node); for a model that prepares its edges in CTEs of its own.
    edges_relation may name one of those CTEs.

    nodes_relation (optional): a relation (or CTE) the model already grouped by node, one row per node of
    the edges, with the node in column `node` and the `node_columns` it computed per node. The macro then
    numbers those rows instead of making the edge ends distinct itself, and labelled_nodes carries the
    node_columns: a model that needs per-node figures groups the edge ends once rather than twice.
-#}
{% macro connected_components_ctes(edges_relation, left_column, right_column, iterations, whole_graph_rounds=2,
                                   nodes_relation=none, node_columns=[]) -%}
{%- if nodes_relation is none %}
edge_nodes as (

    select {{ left_column }} as node from {{ edges_relation }}
    union
    select {{ right_column }} as node from {{ edges_relation }}

),
{%- set nodes_relation = 'edge_nodes' %}
{%- endif %}

node_ids as (

    select
        node,
        {%- for column in node_columns %}
        {{ column }},
        {%- endfor %}
        row_number() over (order by node) as node_id
    from {{ nodes_relation }}

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

linked_nodes as (

    select node_id from links
    union
    select neighbour_id as node_id from links

),

undirected_links as (

    -- Both directions of every link, and a self-loop per linked node so that a round's minimum includes the
    -- node's own label. Not made distinct: a pair linked twice (two edge kinds, or both directions) only
    -- repeats a candidate of a minimum, and the distinct over every pair cost more than the repeats.
    select node_id, neighbour_id from links
    union all
    select neighbour_id as node_id, node_id as neighbour_id from links
    union all
    select node_id, node_id as neighbour_id from linked_nodes

),

labels_0 as (

    select
        node_id,
        min(neighbour_id) as label
    from undirected_links
    group by node_id

),
{%- set whole_graph_rounds = [whole_graph_rounds, iterations] | min %}
{% for round in range(1, iterations + 1) %}
    {%- if round <= whole_graph_rounds %}
        {%- set round_links = 'undirected_links' %}
        {%- set previous_labels = 'labels_' ~ (round - 1) %}
    {%- else %}
        {%- set round_links = 'unsettled_links' %}
        {%- set previous_labels = 'unsettled_labels_' ~ (round - 1) %}
    {%- endif %}
    {%- if round == whole_graph_rounds + 1 %}

settled_labels as (

    -- After the rounds over the whole graph, a component whose links all join equal labels has
    -- converged: one label, which is then its smallest node. Any other component shows each of its
    -- labels at the end of a link joining different labels, so its nodes are exactly those carrying such
    -- a label; only they go on to the remaining rounds, usually none at all.
    select distinct labels.label
    from undirected_links
    inner join {{ 'labels_' ~ whole_graph_rounds }} as labels
        on undirected_links.node_id = labels.node_id
    inner join {{ 'labels_' ~ whole_graph_rounds }} as neighbour_labels
        on undirected_links.neighbour_id = neighbour_labels.node_id
    where labels.label <> neighbour_labels.label

),

{{ previous_labels }} as (

    select labels.*
    from {{ 'labels_' ~ whole_graph_rounds }} as labels
    where labels.label in (select settled_labels.label from settled_labels)

),

unsettled_links as (

    select undirected_links.*
    from undirected_links
    inner join {{ previous_labels }} as labels
        on undirected_links.node_id = labels.node_id

),
    {%- endif %}

hooked_{{ round }} as (

    select
        links.node_id,
        min(previous_labels.label) as label
    from {{ round_links }} as links
    inner join {{ previous_labels }} as previous_labels
        on links.neighbour_id = previous_labels.node_id
    group by links.node_id

),

{{ 'labels_' if round <= whole_graph_rounds else 'unsettled_labels_' }}{{ round }} as (

    select
        hooked.node_id,
        least(hooked.label, coalesce(label_of_label.label, hooked.label)) as label
    from hooked_{{ round }} as hooked
    left join hooked_{{ round }} as label_of_label
        on hooked.label = label_of_label.node_id

),
{% endfor %}
{%- if iterations > whole_graph_rounds %}

final_labels as (

    select
        labels.node_id,
        coalesce(unsettled_labels.label, labels.label) as label
    from {{ 'labels_' ~ whole_graph_rounds }} as labels
    left join {{ 'unsettled_labels_' ~ iterations }} as unsettled_labels
        on labels.node_id = unsettled_labels.node_id

),
{%- else %}

final_labels as (

    select * from {{ 'labels_' ~ iterations }}

),
{%- endif %}

labelled_nodes as (

    select
        node_ids.node,
        {%- for column in node_columns %}
        node_ids.{{ column }},
        {%- endfor %}
        coalesce(component_ids.node, node_ids.node) as component_node
    from node_ids
    left join final_labels
        on node_ids.node_id = final_labels.node_id
    left join node_ids as component_ids
        on final_labels.label = component_ids.node_id

)
{%- endmacro %}
