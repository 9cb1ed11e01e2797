-- One row per clean version of each CRM record: the profile the record had from this version's
-- updated_at (valid_from_at) until the next version's (valid_to_at, null for the current version). Marts
-- and the identity graph computed as of a past date read the version current at the end of that date, so
-- a later address or email change never leaks backward. Cleaned exactly like stg_crm__customers, whose
-- row is this model's current version; verbatim re-deliveries are kept once with the same tie-break.

-- A table, not a view: its two windows over every clean version are computed once, not again by each of
-- its data tests and each model that reads it (the identity graph, the as-of marts).
{{ config(materialized='table') }}

with clean_rows as (

    select * from {{ ref('base_crm__customers') }}
    where quarantine_reason is null

),

versions_deduplicated as (

    select
        *,
        row_number() over (
            partition by customer_id, updated_at
            order by row_fingerprint desc
        ) as delivery_rank
    from clean_rows

),

versions as (

    select * from versions_deduplicated
    where delivery_rank = 1

),

clock as (

    select * from {{ ref('stg_data_clock') }}

)

select
    {{ surrogate_key(['versions.customer_id', 'versions.updated_at']) }} as customer_version_id,
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
    lead(versions.updated_at) over (partition by versions.customer_id order by versions.updated_at) as valid_to_at,
    not versions.is_superseded as is_current_version
from versions
cross join clock
