-- One row per email address to erase at every ESP: the address of each erasure request, and every other
-- address the identity graph links to the person who made it. Whatever the as-of date: an erasure takes
-- effect when the request arrives, so the data clock (a day behind the privacy export, say) or a backtest's
-- var as_of never holds one back. customer_audience_status keeps these people out of esp_audience, and the
-- sync (personalize.sync) sends each address once per destination down the destination's delete path
-- before it diffs the audience.
with erasure_requests as (

    select
        email,
        min(requested_at) as requested_at
    from {{ ref('stg_privacy__requests') }}
    where is_erasure
    group by email

),

identity_emails as (

    select
        identifier as email,
        person_id
    from {{ ref('int_identity_map') }}
    where identifier_type = 'email'

),

erased_people as (

    select
        identity_emails.person_id,
        min(erasure_requests.requested_at) as requested_at
    from erasure_requests
    inner join identity_emails
        on erasure_requests.email = identity_emails.email
    group by identity_emails.person_id

),

erased_addresses as (

    select
        identity_emails.email,
        erased_people.person_id,
        erased_people.requested_at
    from erased_people
    inner join identity_emails
        on erased_people.person_id = identity_emails.person_id

    union all

    -- An address the graph does not know (yet): erased on its own.
    select
        erasure_requests.email,
        cast(null as {{ dbt.type_string() }}) as person_id,
        erasure_requests.requested_at
    from erasure_requests
    where not exists (
        select 1 from identity_emails
        where identity_emails.email = erasure_requests.email
    )

)

select
    email,
    person_id,
    requested_at
from erased_addresses
