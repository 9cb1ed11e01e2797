-- Every raw row is accounted for: raw = clean + quarantined + superseded, for every source.
select *
from {{ ref('quality_source_reconciliation') }}
where difference <> 0
