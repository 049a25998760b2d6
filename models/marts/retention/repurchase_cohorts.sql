-- Repurchase cohorts: one row per cohort month (month of the customer's first valid order) and month since the
-- first order (0, 1, 2, ... up to the as-of month), months without any activity included with zeros.
-- Revenue is booked by month (int_revenue__bookings: a refund in the month it happened), so a closed month never
-- changes when a later refund arrives.
with customers as (
    select * from {{ ref('customer_lifetime_value') }}
),

cohorts as (
    select
        cohort_month,
        count(*) as cohort_size
    from customers
    group by cohort_month
),

months as (
    {{ month_spine('cohorts', 'cohort_month', 'activity_month') }}
),

-- each cohort's months: from its cohort month to the as-of month
periods as (
    select
        cohorts.cohort_month,
        cohorts.cohort_size,
        months.activity_month
    from cohorts
    inner join months on cohorts.cohort_month <= months.activity_month
),

activity as (
    select
        customers.cohort_month,
        orders.order_month as activity_month,
        count(distinct orders.customer_id) as active_customers
    from {{ ref('fct_orders') }} as orders
    inner join customers on orders.customer_id = customers.customer_id
    where orders.is_valid_order
    group by all
),

second_orders as (
    select
        cohort_month,
        cast(date_trunc('month', second_order_date) as date) as activity_month,
        count(*) as new_repeat_customers
    from customers
    where second_order_date is not null
    group by all
),

revenue as (
    select
        customers.cohort_month,
        bookings.booking_month as activity_month,
        sum(bookings.gross_revenue) as gross_revenue,
        sum(bookings.refunded_amount) as refunded_amount,
        sum(bookings.net_revenue) as net_revenue
    from {{ ref('int_revenue__bookings') }} as bookings
    inner join customers on bookings.customer_id = customers.customer_id
    group by all
),

joined as (
    select
        periods.cohort_month,
        periods.activity_month,
        {{ month_diff('periods.cohort_month', 'periods.activity_month') }} as months_since_first_order,
        periods.cohort_size,
        coalesce(activity.active_customers, 0) as active_customers,
        sum(coalesce(second_orders.new_repeat_customers, 0)) over cohort_to_date as cumulative_repeat_customers,
        coalesce(revenue.gross_revenue, 0) as gross_revenue,
        coalesce(revenue.refunded_amount, 0) as refunded_amount,
        coalesce(revenue.net_revenue, 0) as net_revenue,
        sum(coalesce(revenue.net_revenue, 0)) over cohort_to_date as cumulative_net_revenue
    from periods
    left join activity
        on periods.cohort_month = activity.cohort_month and periods.activity_month = activity.activity_month
    left join second_orders
        on periods.cohort_month = second_orders.cohort_month and periods.activity_month = second_orders.activity_month
    left join revenue
        on periods.cohort_month = revenue.cohort_month and periods.activity_month = revenue.activity_month
    window cohort_to_date as (
        partition by periods.cohort_month order by periods.activity_month
        rows between unbounded preceding and current row
    )
)

select
    -- ids
    {{ year_month_text('cohort_month') }} || '+'
    || lpad(cast(months_since_first_order as {{ dbt.type_string() }}), 3, '0') as cohort_period_id,
    -- dimensions
    cohort_month,
    months_since_first_order,
    activity_month,
    -- customers
    cohort_size,
    active_customers,
    {{ safe_ratio('active_customers', 'cohort_size') }} as retention_rate,
    cumulative_repeat_customers,
    {{ repurchase_ratio('cumulative_repeat_customers', 'cohort_size') }} as cumulative_repurchase_rate,
    -- money
    {{ as_money('gross_revenue') }} as gross_revenue,
    {{ as_money('refunded_amount') }} as refunded_amount,
    {{ as_money('net_revenue') }} as net_revenue,
    {{ as_money('cumulative_net_revenue') }} as cumulative_net_revenue,
    {{ safe_ratio('cumulative_net_revenue', 'cohort_size') }} as cumulative_net_revenue_per_customer
from joined
