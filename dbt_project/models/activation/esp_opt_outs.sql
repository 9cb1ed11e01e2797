-- One row per person kept out of the audience because they opted out of email (customer_audience_status).
-- Leaving esp_audience is enough where the sync archives leavers (mirror mode); a destination that only
-- upserts (Klaviyo) would keep them subscribed, so the sync unsubscribes these people there
-- (reverse_etl.engine.unsubscribe_opted_out). Leaving for any other reason (control group, frequency cap)
-- never unsubscribes anyone.
select person_id
from {{ ref('customer_audience_status') }}
where audience_exclusion_reason = 'opted_out'
