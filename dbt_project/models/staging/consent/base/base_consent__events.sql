-- Every raw consent change, parsed, with its quarantine reason and whether it repeats a change already seen.

-- A view over base_consent__events_parsed, which applies every rule but the data clock's: the clock moves
-- with every landing file, and applying it here costs a scan of that table instead of parsing every raw
-- row again. The clock's rule comes last, as it would in one list of rules, and a change it holds back is
-- not a clean row, so it supersedes nothing (and every repeat of it is held back with it).
with parsed_changes as (

    select * from {{ ref('base_consent__events_parsed') }}

),

clock as (

    select * from {{ ref('stg_data_clock') }}

),

checked as (

    select
        parsed_changes.*,
        -- A case, not coalesce(): DuckDB 2.0 fails to bind a filter on a coalesce() of this view's
        -- column pushed into it ("BindBuiltinScalarFunction did not return a BoundFunctionExpression").
        case
            when parsed_changes.row_quarantine_reason is not null then parsed_changes.row_quarantine_reason
            when parsed_changes.event_at >= clock.valid_until_at then 'future_dated'
        end as quarantine_reason
    from parsed_changes
    cross join clock

)

select
    raw_row_key,
    raw_values,
    row_fingerprint,
    source_file,
    email,
    customer_id,
    channel,
    status,
    consent_source,
    event_at,
    quarantine_reason,
    quarantine_reason is null and is_repeated_change as is_superseded
from checked
