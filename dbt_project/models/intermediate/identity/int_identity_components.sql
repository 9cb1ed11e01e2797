-- Every identifier node with the connected component it belongs to (the component's smallest node), and
-- the edge kind that explains it in int_identity_map.
-- Incremental by component: a build rewrites the components that changed since its last build, found from
-- their nodes:
--   - the nodes of edges appended to int_identity_edges since then (loaded_at): a new edge can join two
--     components, and a new node starts or joins one;
--   - the nodes that lost a record edge (int_identity_edges deletes the record edges that have gone: an
--     order whose email changed, say): their record_edge_count differs. A node that lost edges and gained
--     none has fewer record edges; one that gained an edge is in the first set anyway. Event edges never go
--     without int_identity_edges being rebuilt from scratch, and then the pre-hook reset_when_rewritten
--     empties this model too, which rebuilds every row.
-- A component without such a node has the same edges as before, so the same nodes and label. The changed
-- components are recomputed from the current edges of every node they held and every new node: a new
-- component is made only of those. Label propagation over exactly those edges gives what it gives over the
-- whole graph (the label is the component's smallest node). A held node left without edges has gone: the
-- build writes it without a component, and the post-hook deletes it. Every other node keeps its row.
{{
    config(
        materialized='incremental',
        unique_key='node',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ reset_when_rewritten(ref('int_identity_edges')) }}",
        post_hook="{{ delete_gone_nodes() }}",
    )
}}

-- The build also finds the nodes that lost a record edge from int_identity_record_edges:
-- depends_on: {{ ref('int_identity_record_edges') }}

with
{% if is_incremental() %}
    record_edge_ends as (

        -- A self-edge counts once.
        select left_node as node from {{ ref('int_identity_record_edges') }}
        union all
        select right_node as node from {{ ref('int_identity_record_edges') }}
        where right_node <> left_node

    ),

    record_edge_counts as (

        select
            node,
            count(*) as record_edge_count
        from record_edge_ends
        group by node

    ),

    new_edges as (

        select
            left_node,
            right_node
        from {{ ref('int_identity_edges') }}
        where {{ loaded_after_this() }}

    ),

    changed_nodes as (

        select left_node as node from new_edges
        union
        select right_node as node from new_edges
        union
        select coalesce(held.node, record_edge_counts.node) as node
        from (select * from {{ this }} where record_edge_count > 0) as held
        full outer join record_edge_counts
            on held.node = record_edge_counts.node
        where held.record_edge_count is distinct from record_edge_counts.record_edge_count

    ),

    changed_components as (

        select distinct held.component_node
        from {{ this }} as held
        inner join changed_nodes
            on held.node = changed_nodes.node

    ),

    recomputed_nodes as (

        select held.node
        from {{ this }} as held
        inner join changed_components
            on held.component_node = changed_components.component_node
        union
        select node from changed_nodes

    ),

    graph_edges as (

        -- Both ends of a current edge belong to one new component, made of recomputed nodes only; and every
        -- current edge of a recomputed node is here, so its explanation and record edges are complete.
        select
            edges.left_node,
            edges.right_node,
            edges.matched_by
        from {{ ref('int_identity_edges') }} as edges
        where edges.left_node in (select recomputed_nodes.node from recomputed_nodes)

    ),
{% else %}
    graph_edges as (

        select
            left_node,
            right_node,
            matched_by
        from {{ ref('int_identity_edges') }}

    ),
{% endif %}

edge_ends as (

    -- Each end of an edge, keyed by its node. A self-edge's right end repeats its left end, so it is left
    -- out: a self-edge counts once.
    select
        left_node as node,
        matched_by,
        left_node <> right_node as is_link
    from graph_edges
    union all
    select
        right_node as node,
        matched_by,
        true as is_link
    from graph_edges
    where right_node <> left_node

),

explained_nodes as (

    -- One row per node, which the components are computed over (connected_components_ctes' nodes_relation),
    -- with what int_identity_map and the next incremental build need of its edges, so that the edge ends
    -- are grouped once: the explanation (a link to another identifier beats a self-edge; ties go to the
    -- alphabetically first edge kind; an aggregate rather than a ranking window, no sort of every edge end)
    -- and the count of record edges. int_identity_edges holds exactly the edges of
    -- int_identity_record_edges besides its event edges, so this count is the one changed_nodes compares.
    select
        node,
        coalesce(min(case when is_link then matched_by end), min(matched_by)) as matched_by,
        count(case when matched_by not in {{ identity_event_edge_kinds() }} then 1 end) as record_edge_count
    from edge_ends
    group by node

),

{{ connected_components_ctes('graph_edges', 'left_node', 'right_node',
                             var('identity_max_iterations', 12) | int,
                             nodes_relation='explained_nodes', node_columns=['matched_by', 'record_edge_count']) }}

select
    node,
    component_node,
    matched_by,
    record_edge_count,
    {{ this_run_loaded_at() }} as loaded_at
from labelled_nodes
{%- if is_incremental() %}

union all

-- Recomputed nodes without an edge: written without a component so that the merge replaces their row, then
-- deleted by the post-hook.
select
    recomputed_nodes.node,
    null as component_node,
    null as matched_by,
    0 as record_edge_count,
    {{ this_run_loaded_at() }} as loaded_at
from recomputed_nodes
where recomputed_nodes.node not in (select labelled_nodes.node from labelled_nodes)
{%- endif %}
