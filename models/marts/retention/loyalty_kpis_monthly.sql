-- Headline loyalty KPIs per calendar month (reporting timezone), from the month of the first valid order to the
-- as-of month (the as-of month counts up to the as-of date). Monthly flows (orders, revenue, customers ordering)
-- count the month itself, with refunds booked in the month they happened; the repurchase and upsell figures are
-- cumulative: every customer's purchases up to the month's end, so the last row equals the lifetime figure.
with customers as (
    select * from {{ ref('customer_lifetime_value') }}
),

orders as (
    select * from {{ ref('fct_orders') }}
    where is_valid_order
),

months as (
    {{ month_spine('customers', 'cohort_month') }}
),

ordering as (
    select
        orders.order_month as month_start,
        count(distinct orders.customer_id) as customers_ordering,
        count(distinct orders.customer_id) filter (where customers.cohort_month = orders.order_month)
            as new_customers,
        count(distinct orders.customer_id) filter (where customers.cohort_month < orders.order_month)
            as returning_customers,
        count(*) as orders,
        sum(orders.gross_revenue) as gross_revenue
    from orders
    inner join customers on orders.customer_id = customers.customer_id
    group by all
),

booked as (
    select
        booking_month as month_start,
        sum(refunded_amount) as refunded_amount,
        sum(net_revenue) as net_revenue
    from {{ ref('int_revenue__bookings') }}
    group by all
),

product_types as (
    select * from {{ ref('int_customers__product_types') }}
),

-- the month each customer became a customer, a repeat customer, a buyer of one and of two product types
milestones as (
    select
        cohort_month as month_start,
        'customer' as milestone
    from customers
    union all
    select
        cast(date_trunc('month', second_order_date) as date) as month_start,
        'repeat_customer' as milestone
    from customers
    where second_order_date is not null
    union all
    select
        cast(date_trunc('month', first_product_type_date) as date) as month_start,
        'one_type' as milestone
    from product_types
    union all
    select
        cast(date_trunc('month', second_product_type_date) as date) as month_start,
        'two_types' as milestone
    from product_types
    where second_product_type_date is not null
),

milestones_per_month as (
    select
        month_start,
        count(*) filter (where milestone = 'customer') as new_customers,
        count(*) filter (where milestone = 'repeat_customer') as new_repeat_customers,
        count(*) filter (where milestone = 'one_type') as new_one_type_customers,
        count(*) filter (where milestone = 'two_types') as new_two_type_customers
    from milestones
    group by month_start
),

cumulative as (
    select
        months.month_start,
        sum(coalesce(m.new_customers, 0)) over to_date as cumulative_customers,
        sum(coalesce(m.new_repeat_customers, 0)) over to_date as cumulative_repeat_customers,
        sum(coalesce(m.new_one_type_customers, 0) - coalesce(m.new_two_type_customers, 0)) over to_date
            as single_type_customers,
        sum(coalesce(m.new_two_type_customers, 0)) over to_date as multi_type_customers
    from months
    left join milestones_per_month as m on months.month_start = m.month_start
    window to_date as (order by months.month_start rows between unbounded preceding and current row)
)

select
    -- ids
    months.month_start,
    -- customers in the month
    coalesce(ordering.customers_ordering, 0) as customers_ordering,
    coalesce(ordering.new_customers, 0) as new_customers,
    coalesce(ordering.returning_customers, 0) as returning_customers,
    {{ safe_ratio('ordering.new_customers', 'ordering.customers_ordering') }} as new_customer_share,
    {{ safe_ratio('ordering.returning_customers', 'ordering.customers_ordering') }} as returning_customer_share,
    -- orders and revenue in the month
    coalesce(ordering.orders, 0) as orders,
    {{ as_money('coalesce(ordering.gross_revenue, 0)') }} as gross_revenue,
    {{ as_money('coalesce(booked.refunded_amount, 0)') }} as refunded_amount,
    {{ as_money('coalesce(booked.net_revenue, 0)') }} as net_revenue,
    {{ average_order_value('ordering.gross_revenue', 'ordering.orders') }} as average_order_value,
    {{ purchase_frequency('ordering.orders', 'ordering.customers_ordering') }} as purchase_frequency,
    -- cumulative to the month's end
    cumulative.cumulative_customers,
    cumulative.cumulative_repeat_customers,
    {{ repurchase_ratio('cumulative.cumulative_repeat_customers', 'cumulative.cumulative_customers') }}
        as repurchase_ratio,
    cumulative.single_type_customers,
    cumulative.multi_type_customers,
    {{ upsell_rate('cumulative.multi_type_customers', 'cumulative.single_type_customers') }} as upsell_rate,
    {{ multi_type_share('cumulative.multi_type_customers', 'cumulative.single_type_customers') }}
        as multi_type_share
from months
left join ordering on months.month_start = ordering.month_start
left join booked on months.month_start = booked.month_start
left join cumulative on months.month_start = cumulative.month_start
