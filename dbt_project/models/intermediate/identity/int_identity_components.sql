-- Every identifier node with the connected component it belongs to (the component's smallest node).
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

with record_edge_ends as (

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

{% if is_incremental() %}
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

        -- Both ends of a current edge belong to one new component, made of recomputed nodes only.
        select
            edges.left_node,
            edges.right_node
        from {{ ref('int_identity_edges') }} as edges
        where edges.left_node in (select recomputed_nodes.node from recomputed_nodes)

    ),
{% else %}
    graph_edges as (

        select
            left_node,
            right_node
        from {{ ref('int_identity_edges') }}

    ),
{% endif %}

{{ connected_components_ctes('graph_edges', 'left_node', 'right_node',
                             var('identity_max_iterations', 12) | int) }},

current_nodes as (

    select
        labelled_nodes.node,
        labelled_nodes.component_node,
        coalesce(record_edge_counts.record_edge_count, 0) as record_edge_count
    from labelled_nodes
    left join record_edge_counts
        on labelled_nodes.node = record_edge_counts.node

)

select
    node,
    component_node,
    record_edge_count,
    {{ this_run_loaded_at() }} as loaded_at
from current_nodes
{%- if is_incremental() %}

union all

-- Recomputed nodes without an edge: written without a component so that the merge replaces their row, then
-- deleted by the post-hook.
select
    recomputed_nodes.node,
    null as component_node,
    0 as record_edge_count,
    {{ this_run_loaded_at() }} as loaded_at
from recomputed_nodes
where recomputed_nodes.node not in (select current_nodes.node from current_nodes)
{%- endif %}
