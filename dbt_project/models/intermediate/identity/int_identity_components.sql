-- Every identifier node with the connected component it belongs to (the component's smallest node).
{{ config(materialized='table') }}

{{ connected_components(ref('int_identity_edges'), 'left_node', 'right_node',
                        var('identity_max_iterations', 12) | int) }}
