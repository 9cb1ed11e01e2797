-- Label propagation ran enough rounds: no edge joins two different persons. If this fails, raise the
-- var identity_max_iterations (the identity graph has a longer chain than the rounds cover).
--
-- In a `dbt build` of the incremental identity models (macro rows_written_by_this_run) only the edges
-- with an end that the build wrote into int_identity_map are checked, which is equivalent to checking
-- every edge: an edge appended since int_identity_components last ran has its nodes' components, and so
-- their map rows, rewritten by this build
-- (int_identity_components rewrites the component of every node of a new edge); an older edge whose ends
-- were both written before this build joined the same two person_ids when the latest build that wrote one
-- of its ends or itself checked it, and none of the three has changed since. That needs
-- int_identity_components and int_identity_map to run in the same invocation (macro
-- identity_rows_written_by_this_run), and a map that holds rows of earlier builds; otherwise every edge
-- is checked.
--
-- Only edges whose LEFT end was written are looked up: an edge whose right end was written has its left
-- end written too. A new edge's left node is a changed node of int_identity_components, which rewrites
-- it. An older edge joined its two ends into one component at the last build (or this test failed then),
-- so a build that rewrites the right end's component rewrites every node it held, the left end included;
-- and the left end, having an edge whose left node is rewritten (int_identity_components' graph_edges),
-- gets a component and so a map row. One semi-join on left_node instead of two on either end.
{%- set this_run = identity_rows_written_by_this_run() %}

{% if this_run != '1 = 1' %}

    with written_nodes as (

        select identifier_type || ':' || identifier as node
        from {{ ref('int_identity_map') }}
        where {{ this_run }}

    ),

    checked_edges as (

        -- Only the nodes are read for every edge: the scan of the whole table is the cost.
        select
            left_node,
            right_node
        from {{ ref('int_identity_edges') }}
        where left_node in (select written_nodes.node from written_nodes)

    ),

    checked_nodes as (

        select
            identifier_type || ':' || identifier as node,
            person_id
        from {{ ref('int_identity_map') }}
        where identifier_type || ':' || identifier in (
            select checked_edges.left_node from checked_edges
            union
            select checked_edges.right_node from checked_edges
        )

    ),

    edge_persons as (

        select
            checked_edges.left_node,
            checked_edges.right_node,
            left_nodes.person_id as left_person_id,
            right_nodes.person_id as right_person_id
        from checked_edges
        inner join checked_nodes as left_nodes
            on checked_edges.left_node = left_nodes.node
        inner join checked_nodes as right_nodes
            on checked_edges.right_node = right_nodes.node

    )

{% else %}

    with mapped_nodes as (

        select
            identifier_type || ':' || identifier as node,
            person_id
        from {{ ref('int_identity_map') }}

    ),

    edge_persons as (

        select
            edges.left_node,
            edges.right_node,
            left_nodes.person_id as left_person_id,
            right_nodes.person_id as right_person_id
        from {{ ref('int_identity_edges') }} as edges
        inner join mapped_nodes as left_nodes
            on edges.left_node = left_nodes.node
        inner join mapped_nodes as right_nodes
            on edges.right_node = right_nodes.node

    )

{% endif %}

select
    left_node,
    right_node,
    left_person_id,
    right_person_id
from edge_persons
where left_person_id <> right_person_id
