-- Label propagation ran enough rounds: no edge joins two different persons. If this fails, raise the
-- var identity_max_iterations (the identity graph has a longer chain than the rounds cover).
select
    edges.identity_edge_id,
    left_map.person_id as left_person_id,
    right_map.person_id as right_person_id
from {{ ref('int_identity_edges') }} as edges
inner join {{ ref('int_identity_map') }} as left_map
    on edges.left_type = left_map.identifier_type
    and edges.left_identifier = left_map.identifier
inner join {{ ref('int_identity_map') }} as right_map
    on edges.right_type = right_map.identifier_type
    and edges.right_identifier = right_map.identifier
where left_map.person_id <> right_map.person_id
