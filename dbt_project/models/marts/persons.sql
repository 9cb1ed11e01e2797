-- One row per person: the person_id every mart keys on, with how many identifiers of each kind were
-- stitched together into them.
with identity_map as (

    select * from {{ ref('int_identity_map') }}

)

select
    person_id,
    count(*) as identifier_count,
    sum(case when identifier_type = 'email' then 1 else 0 end) as email_count,
    sum(case when identifier_type = 'crm_customer_id' then 1 else 0 end) as crm_customer_id_count,
    sum(case when identifier_type = 'shop_customer_id' then 1 else 0 end) as shop_customer_id_count,
    sum(case when identifier_type = 'anonymous_id' then 1 else 0 end) as anonymous_id_count,
    min(case when identifier_type = 'email' then identifier end) as primary_email
from identity_map
group by person_id
