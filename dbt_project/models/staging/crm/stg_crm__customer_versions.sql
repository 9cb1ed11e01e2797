-- One row per clean version of each CRM record: the profile the record had from this version's
-- updated_at (valid_from_at) until the next version's (valid_to_at, null for the current version). Marts
-- and the identity graph computed as of a past date read the version current at the end of that date, so
-- a later address or email change never leaks backward. Cleaned exactly like stg_crm__customers, whose
-- row is this model's current version; verbatim re-deliveries are kept once with the same tie-break.

-- A view: base_crm__customers ranks each record's rows (is_repeated_delivery, next_version_at) without the
-- data clock, so what is left here is a filter and a projection with the clock's birth-date rule. The clock
-- moves with every landing file; a view costs nothing to rebuild then, and equals a full refresh.
with versions as (

    select * from {{ ref('base_crm__customers') }}
    where
        quarantine_reason is null
        and not is_repeated_delivery

),

clock as (

    select * from {{ ref('stg_data_clock') }}

)

-- No surrogate key column: (customer_id, valid_from_at) is the key, tested as such; an md5 of it was
-- computed only by its own unique and not_null tests.
select
    versions.customer_id,
    versions.email,
    versions.first_name,
    versions.last_name,
    versions.phone,
    case
        when versions.birth_date between cast('1900-01-01' as date) and clock.latest_data_date
            then versions.birth_date
    end as birth_date,
    coalesce(
        versions.raw_birth_date is not null
        and not coalesce(versions.birth_date between cast('1900-01-01' as date) and clock.latest_data_date, false),
        false
    ) as had_impossible_birth_date,
    versions.gender,
    versions.country_code,
    versions.raw_country is not null and versions.country_code is null as had_unknown_country,
    versions.city,
    versions.postal_code,
    versions.created_at,
    versions.updated_at as valid_from_at,
    versions.next_version_at as valid_to_at,
    not versions.is_superseded as is_current_version
from versions
cross join clock
