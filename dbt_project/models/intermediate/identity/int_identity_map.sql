-- The single source of truth for identity: every identifier with its person_id and the edge kind that
-- attached it. person_id is a hash of the component's smallest identifier, so it is the same on every
-- rerun over unchanged input and does not depend on load order or run counters.
{{ config(materialized='table') }}

with components as (

    select * from {{ ref('int_identity_components') }}

),

edges as (

    select * from {{ ref('int_identity_edges') }}

),

node_edges as (

    select
        left_node as node,
        left_type as identifier_type,
        left_identifier as identifier,
        matched_by,
        left_node <> right_node as is_link
    from edges
    union all
    select
        right_node as node,
        right_type as identifier_type,
        right_identifier as identifier,
        matched_by,
        left_node <> right_node as is_link
    from edges

),

explained_nodes as (

    -- One explanation per identifier: a link to another identifier beats a self-edge; ties go to the
    -- alphabetically first edge kind. An aggregate rather than a ranking window: no sort of every edge.
    select
        node,
        identifier_type,
        identifier,
        coalesce(min(case when is_link then matched_by end), min(matched_by)) as matched_by
    from node_edges
    group by node, identifier_type, identifier

)

select
    explained_nodes.identifier_type,
    explained_nodes.identifier,
    {{ dbt.hash("'person:' || components.component_node") }} as person_id,
    explained_nodes.matched_by,
    components.component_node
from explained_nodes
inner join components
    on explained_nodes.node = components.node
