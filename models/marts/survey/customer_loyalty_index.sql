-- Customer Loyalty Index per customer: the CLI of the customer's latest response (on or before the as-of date)
-- that has all three answers. Responses with a missing answer have no CLI (fct_survey_responses) and are skipped;
-- a customer without any complete response has no row.
with scored_responses as (
    select * from {{ ref('fct_survey_responses') }}
    where not is_after_as_of and customer_id is not null and cli_score is not null
)

select
    -- ids
    customer_id,
    {{ arg_max('response_id', ['responded_at', 'response_id']) }} as response_id,
    -- metrics
    {{ arg_max('cli_score', ['responded_at', 'response_id']) }} as cli_score,
    {{ arg_max('cli_band', ['responded_at', 'response_id']) }} as cli_band,
    count(*) as responses_with_cli,
    -- dates
    max(response_date) as response_date
from scored_responses
group by customer_id
