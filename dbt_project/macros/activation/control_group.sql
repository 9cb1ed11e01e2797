{#-
    control_group_bucket(person_id): the person's control-group bucket, 0-9999, from a hash of the salted
    person_id (var `control_group_salt`). A person is in the control group when the bucket is below
    var `control_group_share` x 10000. It depends on nothing but the person_id and the salt, so it is
    stable across runs and independent of segment, tier or any behaviour; changing the salt reshuffles it.
-#}
{% macro control_group_bucket(person_id) -%}
    {{ hash_bucket(dbt.concat(["'" ~ var('control_group_salt', 'holdout-v1') ~ ":'", person_id]), 10000) }}
{%- endmacro %}
