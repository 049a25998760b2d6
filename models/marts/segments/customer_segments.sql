-- One row per customer: RFM scores, the at-risk and churned flags, and one lifecycle stage with the rule that put
-- the customer there (docs/metrics.md, lifecycle stage). RFM scores are quintiles 1-5 by cume_dist, so customers
-- with equal values share a score: R on days since the last order (recent = 5), F on valid orders, M on net
-- revenue (historical CLV).
with customers as (
    select * from {{ ref('customer_lifetime_value') }}
),

latest_responses as (
    select
        customer_id,
        {{ arg_max('nps_category', 'responded_at') }} as latest_nps_category,
        max(response_date) as latest_response_date
    from {{ ref('fct_survey_responses') }}
    where not is_after_as_of and customer_id is not null
    group by customer_id
),

scored as (
    select
        customers.*,
        latest_responses.latest_nps_category,
        cast(ceil(5 * cume_dist() over (order by customers.days_since_last_order desc)) as integer)
            as recency_score,
        cast(ceil(5 * cume_dist() over (order by customers.valid_order_count)) as integer) as frequency_score,
        cast(ceil(5 * cume_dist() over (order by customers.net_revenue)) as integer) as monetary_score,
        coalesce(
            customers.is_repeat_customer
            and customers.days_since_last_order > 2 * customers.mean_days_between_orders,
            false
        ) as is_overdue,
        customers.days_since_last_order >= 365 as is_lapsed_365_days,
        -- null when the repeat-purchase model did not converge: the rules then rest on the order history alone
        customers.probability_alive
    from customers
    left join latest_responses on customers.customer_id = latest_responses.customer_id
),

flagged as (
    select
        *,
        is_overdue or coalesce(probability_alive < 0.5, false) as is_at_risk,
        is_lapsed_365_days or coalesce(probability_alive < 0.1, false) as is_churned
    from scored
)

select
    -- ids
    customer_id,
    -- RFM
    recency_score,
    frequency_score,
    monetary_score,
    cast(recency_score as {{ dbt.type_string() }})
    || cast(frequency_score as {{ dbt.type_string() }})
    || cast(monetary_score as {{ dbt.type_string() }}) as rfm_segment,
    -- inputs of the rules
    valid_order_count,
    days_since_last_order,
    mean_days_between_orders,
    net_revenue,
    latest_nps_category,
    probability_alive,
    -- flags
    is_overdue,
    is_at_risk,
    is_churned,
    -- lifecycle stage: churned and at risk override the ladder one-time buyer -> repeat -> loyal -> advocate
    case
        when is_churned then 'churned'
        when is_at_risk then 'at_risk'
        when valid_order_count >= 3 and latest_nps_category = 'promoter' then 'advocate'
        when valid_order_count >= 3 then 'loyal'
        when valid_order_count = 2 then 'repeat_customer'
        else 'one_time_buyer'
    end as lifecycle_stage,
    case
        when is_lapsed_365_days then 'churned: no valid order for 365 days or more'
        when is_churned then 'churned: predicted probability of being alive below 0.1'
        when is_overdue
            then 'at_risk: repeat customer whose days since last order exceed twice their mean days between orders'
        when is_at_risk then 'at_risk: predicted probability of being alive below 0.5'
        when valid_order_count >= 3 and latest_nps_category = 'promoter'
            then 'advocate: 3+ valid orders, not at risk, latest NPS answer a promoter'
        when valid_order_count >= 3
            then 'loyal: 3+ valid orders, not at risk, latest NPS answer not a promoter (or none)'
        when valid_order_count = 2 then 'repeat_customer: exactly 2 valid orders, not at risk'
        else 'one_time_buyer: exactly 1 valid order, not churned'
    end as lifecycle_rule
from flagged
