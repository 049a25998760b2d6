-- Loyalty-program members vs non-members (membership as of the as-of date: an enrolment on or before it). Two rows,
-- always. Lift columns divide a group's figure by the non-members' one (1 on the non-member row). This is a
-- comparison, not a causal effect: customers who buy often are more likely to join.
-- The 90-day second-purchase rate only counts customers whose first valid order is at least 90 days before the
-- as-of date (the others have not had 90 days to come back).
with customers as (
    select
        *,
        case when is_loyalty_member then 'member' else 'non_member' end as membership
    from {{ ref('customer_lifetime_value') }}
),

memberships (membership) as (
    values ('member'), ('non_member')
),

groups as (
    select
        memberships.membership,
        count(customers.customer_id) as customers,
        count(customers.customer_id) filter (where customers.is_repeat_customer) as repeat_customers,
        coalesce(sum(customers.valid_order_count), 0) as valid_orders,
        coalesce(sum(customers.gross_revenue), 0) as gross_revenue,
        coalesce(sum(customers.historical_clv), 0) as historical_clv,
        count(customers.customer_id) filter (where customers.first_order_date <= {{ as_of_date() }} - 90)
            as customers_observed_90_days,
        count(customers.customer_id) filter (
            where customers.first_order_date <= {{ as_of_date() }} - 90
            and customers.second_order_date <= customers.first_order_date + 90
        ) as second_purchase_within_90_days
    from memberships
    left join customers on memberships.membership = customers.membership
    group by memberships.membership
),

metrics as (
    select
        *,
        {{ repurchase_ratio('repeat_customers', 'customers') }} as repurchase_ratio,
        {{ average_order_value('gross_revenue', 'valid_orders') }} as average_order_value,
        {{ money_ratio('historical_clv', 'customers') }} as mean_historical_clv,
        {{ safe_ratio('second_purchase_within_90_days', 'customers_observed_90_days') }}
            as second_purchase_rate_90_days
    from groups
),

baseline as (
    select * from metrics
    where membership = 'non_member'
)

select
    -- ids
    metrics.membership,
    -- customers
    metrics.customers,
    metrics.repeat_customers,
    metrics.repurchase_ratio,
    -- orders and value
    metrics.valid_orders,
    {{ as_money('metrics.gross_revenue') }} as gross_revenue,
    metrics.average_order_value,
    {{ as_money('metrics.historical_clv') }} as historical_clv,
    metrics.mean_historical_clv,
    -- second purchase within 90 days
    metrics.customers_observed_90_days,
    metrics.second_purchase_within_90_days,
    metrics.second_purchase_rate_90_days,
    -- lift against non-members
    {{ safe_ratio('metrics.repurchase_ratio', 'baseline.repurchase_ratio') }} as repurchase_ratio_lift,
    {{ safe_ratio('metrics.average_order_value', 'baseline.average_order_value') }} as average_order_value_lift,
    {{ safe_ratio('metrics.mean_historical_clv', 'baseline.mean_historical_clv') }} as mean_historical_clv_lift,
    {{ safe_ratio('metrics.second_purchase_rate_90_days', 'baseline.second_purchase_rate_90_days') }}
        as second_purchase_rate_90_days_lift
from metrics
cross join baseline
