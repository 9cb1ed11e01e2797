-- One row per CRM record: its latest clean version. Impossible birth dates and unknown countries are
-- nulled (and flagged) rather than dropping the person.
with latest_versions as (

    select * from {{ ref('base_crm__customers') }}
    where
        quarantine_reason is null
        and not is_superseded

),

clock as (

    select * from {{ ref('stg_data_clock') }}

)

select
    latest_versions.customer_id,
    latest_versions.email,
    latest_versions.first_name,
    latest_versions.last_name,
    latest_versions.phone,
    case
        when latest_versions.birth_date between cast('1900-01-01' as date) and clock.latest_data_date
            then latest_versions.birth_date
    end as birth_date,
    -- Unparseable or impossible: either way the value given cannot be a birth date.
    coalesce(
        latest_versions.raw_birth_date is not null
        and not coalesce(
            latest_versions.birth_date between cast('1900-01-01' as date) and clock.latest_data_date, false
        ),
        false
    ) as had_impossible_birth_date,
    latest_versions.gender,
    latest_versions.country_code,
    latest_versions.raw_country is not null and latest_versions.country_code is null as had_unknown_country,
    latest_versions.city,
    latest_versions.postal_code,
    latest_versions.created_at,
    latest_versions.updated_at
from latest_versions
cross join clock
