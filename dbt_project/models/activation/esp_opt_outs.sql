-- One row per person kept out of the audience because they opted out of email (customer_audience_status).
-- Leaving esp_audience is not enough: an upsert leaves leavers subscribed, and an archived member re-added
-- later comes back subscribed. So the sync unsubscribes these people at the ESP
-- (reverse_etl.engine.unsubscribe_opted_out). Leaving for any other reason (control group, frequency cap)
-- never unsubscribes anyone.
select person_id
from {{ ref('customer_audience_status') }}
where audience_exclusion_reason = 'opted_out'
