-- One row per person: the person_id every mart keys on, with how many identifiers of each kind were
-- stitched together into them.
with identity_map as (

    select * from {{ ref('int_identity_map') }}

)

-- Counts cast to bigint: a sum of integers widens to a 128-bit HUGEINT on DuckDB, a type other warehouses
-- do not have, in a public mart with a contract.
select
    person_id,
    cast(count(*) as {{ dbt.type_bigint() }}) as identifier_count,
    cast(sum(case when identifier_type = 'email' then 1 else 0 end) as {{ dbt.type_bigint() }}) as email_count,
    cast(
        sum(case when identifier_type = 'crm_customer_id' then 1 else 0 end) as {{ dbt.type_bigint() }}
    ) as crm_customer_id_count,
    cast(
        sum(case when identifier_type = 'shop_customer_id' then 1 else 0 end) as {{ dbt.type_bigint() }}
    ) as shop_customer_id_count,
    cast(
        sum(case when identifier_type = 'anonymous_id' then 1 else 0 end) as {{ dbt.type_bigint() }}
    ) as anonymous_id_count,
    min(case when identifier_type = 'email' then identifier end) as primary_email
from identity_map
group by person_id
