-- One row per registered customer. Being a "customer" in the metrics sense (at least one valid order as of the
-- as-of date) is the is_customer flag; loyalty membership is as of the as-of date too.
with customers as (
    select * from {{ ref('stg_loyalty__customers') }}
),

enrolments as (
    select
        customer_id,
        min(occurred_at) as loyalty_enrolled_at
    from {{ ref('stg_loyalty__loyalty_events') }}
    where event_type = 'enrolled' and {{ to_reporting_date('occurred_at') }} <= {{ as_of_date() }}
    group by customer_id
),

tiers as (
    select
        customer_id,
        {{ arg_max('tier', 'occurred_at') }} as loyalty_tier
    from {{ ref('stg_loyalty__loyalty_events') }}
    where tier is not null and {{ to_reporting_date('occurred_at') }} <= {{ as_of_date() }}
    group by customer_id
),

first_orders as (
    select
        customer_id,
        min(order_date) as first_order_date
    from {{ ref('int_orders__enriched') }}
    where is_valid_order
    group by customer_id
)

select
    -- ids
    customers.customer_id,
    customers.email_hash,
    -- attributes
    customers.country_code,
    customers.acquisition_channel,
    first_orders.customer_id is not null as is_customer,
    first_orders.first_order_date,
    enrolments.customer_id is not null as is_loyalty_member,
    enrolments.loyalty_enrolled_at,
    case when enrolments.customer_id is not null then tiers.loyalty_tier end as loyalty_tier,
    -- timestamps
    customers.signed_up_at,
    {{ to_reporting_date('customers.signed_up_at') }} as signup_date
from customers
left join enrolments on customers.customer_id = enrolments.customer_id
left join tiers on customers.customer_id = tiers.customer_id
left join first_orders on customers.customer_id = first_orders.customer_id
