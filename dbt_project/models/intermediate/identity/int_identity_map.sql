-- The single source of truth for identity: every identifier with its person_id and the edge kind that
-- attached it. person_id is a hash of the component's smallest identifier, so it is the same on every
-- rerun over unchanged input and does not depend on load order or run counters.
-- Incremental: a build rewrites the identifiers int_identity_components rewrote since its last build (the
-- components whose edges changed, with the explanations of their nodes). An identifier's explanation
-- depends only on its own edges, and an edge that comes or goes changes its nodes' components, so every
-- other identifier keeps its row. The pre-hooks
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

-- int_identity_components carries each node's explanation, so the map reads nothing else: no edge is read
-- or grouped again here.
with components as (

    select
        node,
        component_node,
        matched_by
    from {{ ref('int_identity_components') }}
    {%- if is_incremental() %}
        where {{ loaded_after_this() }}
    {%- endif %}

)

-- A node is `identifier_type:identifier` and no identifier type holds a colon, so the first colon splits it.
select
    {{ dbt.split_part('node', "':'", 1) }} as identifier_type,
    {{ dbt.right('node', dbt.length('node') ~ ' - ' ~ dbt.position("':'", 'node')) }} as identifier,
    {{ dbt.hash("'person:' || component_node") }} as person_id,
    matched_by,
    component_node,
    {{ this_run_loaded_at() }} as loaded_at
from components
