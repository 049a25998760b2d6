-- The customers whose monthly engagement changes tonight (customer_engagement_monthly rebuilds exactly them): those
-- with engagement events staged tonight (new batches, or held back for their customer until tonight), and those
-- with events dated between last night's as-of date and tonight's. Empty on a full build (everything is rebuilt).
select distinct customer_id
from {{ ref('base_loyalty__engagement_events') }}
where {{ 'true' if night_value('build_mode', 'full') == 'incremental' else 'false' }}
    and _copy_number = 1 and _quarantine_reason is null
    and (
        _built_as_of = {{ built_as_of() }}
        or (
            {{ to_reporting_date('occurred_at') }} > least({{ previous_as_of_date() }}, {{ as_of_date() }})
            and {{ to_reporting_date('occurred_at') }} <= greatest({{ previous_as_of_date() }}, {{ as_of_date() }})
        )
    )
