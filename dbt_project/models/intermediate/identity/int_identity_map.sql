-- The single source of truth for identity: every identifier with its person_id and the edge kind that
-- attached it. person_id is a hash of the component's smallest identifier, so it is the same on every
-- rerun over unchanged input and does not depend on load order or run counters.
-- Incremental: a build rewrites the identifiers int_identity_components rewrote since its last build (the
-- components whose edges changed). An identifier's explanation depends only on its own edges, and an edge
-- that comes or goes changes its nodes' components, so every other identifier keeps its row. The pre-hooks
-- delete identifiers that are no longer a node (delete_gone_identifiers), or every row when the components
-- were rebuilt from scratch (reset_when_rewritten).
{{
    config(
        materialized='incremental',
        unique_key=['identifier_type', 'identifier'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook=["{{ reset_when_rewritten(ref('int_identity_components')) }}", "{{ delete_gone_identifiers() }}"],
    )
}}

with

{% if is_incremental() %}
    components as (

        select
            node,
            component_node
        from {{ ref('int_identity_components') }}
        where {{ loaded_after_this() }}

    ),

    edges as (

        select *
        from {{ ref('int_identity_edges') }}
        where
            left_node in (select components.node from components)
            or right_node in (select components.node from components)

    ),
{% else %}
    components as (

        select
            node,
            component_node
        from {{ ref('int_identity_components') }}

    ),

    edges as (

        select * from {{ ref('int_identity_edges') }}

    ),
{% endif %}

node_edges as (

    -- Each end of an edge, keyed by its node alone: the identifier's type and value are read back from the
    -- node of the one row per identifier, instead of being carried through the grouping of every edge end
    -- (three text keys instead of one: 4.5 of 12 CPU-s at a million customers). A self-edge's right end
    -- repeats its left end, so it is left out.
    select
        left_node as node,
        matched_by,
        left_node <> right_node as is_link
    from edges
    union all
    select
        right_node as node,
        matched_by,
        true as is_link
    from edges
    where right_node <> left_node

),

explained_nodes as (

    -- One explanation per identifier: a link to another identifier beats a self-edge; ties go to the
    -- alphabetically first edge kind. An aggregate rather than a ranking window: no sort of every edge.
    select
        node,
        coalesce(min(case when is_link then matched_by end), min(matched_by)) as matched_by
    from node_edges
    group by node

)

-- A node is `identifier_type:identifier` and no identifier type holds a colon, so the first colon splits it.
select
    {{ dbt.split_part('explained_nodes.node', "':'", 1) }} as identifier_type,
    {{ dbt.right('explained_nodes.node', dbt.length('explained_nodes.node') ~ ' - '
                 ~ dbt.position("':'", 'explained_nodes.node')) }} as identifier,
    {{ dbt.hash("'person:' || components.component_node") }} as person_id,
    explained_nodes.matched_by,
    components.component_node,
    {{ this_run_loaded_at() }} as loaded_at
from explained_nodes
inner join components
    on explained_nodes.node = components.node
