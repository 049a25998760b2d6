-- Share of wallet per survey response that reports a monthly category spend and belongs to a customer: the
-- customer's net revenue over the 12 months up to the response date (valid orders dated after the date 12 months
-- before the response and on or before the response date, net of refunds counted as of the as-of date) / 12 x the
-- reported monthly spend (both in the reporting currency), capped at 1 and flagged when capped.
with responses as (
    select * from {{ ref('fct_survey_responses') }}
    where not is_after_as_of and customer_id is not null and category_monthly_spend is not null
),

orders as (
    select * from {{ ref('fct_orders') }}
    where is_valid_order
),

windowed as (
    select
        responses.response_id,
        responses.customer_id,
        responses.response_date,
        responses.category_monthly_spend,
        coalesce(sum(orders.net_revenue), 0) as net_revenue_12m,
        count(orders.order_id) as valid_orders_12m
    from responses
    left join orders
        on responses.customer_id = orders.customer_id
            and orders.order_date > cast(responses.response_date - interval 12 month as date)
            and responses.response_date >= orders.order_date
    group by all
)

select
    -- ids
    response_id,
    customer_id,
    -- inputs
    {{ as_money('net_revenue_12m') }} as net_revenue_12m,
    valid_orders_12m,
    category_monthly_spend as reported_monthly_category_spend,
    {{ as_money('12 * category_monthly_spend') }} as reported_annual_category_spend,
    -- metric
    {{ share_of_wallet('net_revenue_12m', 'category_monthly_spend') }} as share_of_wallet,
    {{ share_of_wallet_is_capped('net_revenue_12m', 'category_monthly_spend') }} as is_capped,
    -- dates
    response_date
from windowed
