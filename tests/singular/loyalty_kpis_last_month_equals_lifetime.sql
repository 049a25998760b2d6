-- Invariant: the cumulative figures of loyalty_kpis_monthly in the as-of month equal the lifetime figures of
-- customer_lifetime_value (customers, repeat customers, single- and multi-type customers), and each month's
-- customers, orders and new customers add up to the lifetime totals. Returns the figures that differ.
with last_month as (
    select * from {{ ref('loyalty_kpis_monthly') }}
    where month_start = cast(date_trunc('month', {{ as_of_date() }}) as date)
),

sums as (
    select
        sum(new_customers) as new_customers,
        sum(orders) as orders
    from {{ ref('loyalty_kpis_monthly') }}
),

lifetime as (
    select
        count(*) as customers,
        count(*) filter (where is_repeat_customer) as repeat_customers,
        count(*) filter (where product_type_count = 1) as single_type_customers,
        count(*) filter (where product_type_count >= 2) as multi_type_customers,
        sum(valid_order_count) as orders
    from {{ ref('customer_lifetime_value') }}
),

checks as (
    select
        'cumulative_customers' as figure,
        last_month.cumulative_customers as monthly,
        lifetime.customers as lifetime
    from lifetime left join last_month on true
    union all
    select
        'cumulative_repeat_customers' as figure,
        last_month.cumulative_repeat_customers as monthly,
        lifetime.repeat_customers as lifetime
    from lifetime left join last_month on true
    union all
    select
        'single_type_customers' as figure,
        last_month.single_type_customers as monthly,
        lifetime.single_type_customers as lifetime
    from lifetime left join last_month on true
    union all
    select
        'multi_type_customers' as figure,
        last_month.multi_type_customers as monthly,
        lifetime.multi_type_customers as lifetime
    from lifetime left join last_month on true
    union all
    select
        'sum of new_customers' as figure,
        sums.new_customers as monthly,
        lifetime.customers as lifetime
    from lifetime cross join sums
    union all
    select
        'sum of orders' as figure,
        sums.orders as monthly,
        lifetime.orders as lifetime
    from lifetime cross join sums
)

select *
from checks
where coalesce(monthly, 0) <> lifetime
