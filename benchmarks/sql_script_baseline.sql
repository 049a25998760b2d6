-- The analyst's hand-written DuckDB script: the three marts marts.customer_lifetime_value (without its predictive
-- columns), marts.repurchase_cohorts and marts.loyalty_kpis_monthly straight from the raw CSV files, with the
-- warehouse's definitions (docs/metrics.md): valid orders (completed, dated on or before the as-of date in the
-- reporting timezone), amounts converted into the reporting currency once per order at the rate in force on the
-- order's date (seed exchange_rates) and rounded to cents, refunds counted as of the as-of date, refunds booked in
-- the month they happened in the monthly series (each refund's converted amount telescoped over its order's
-- running total). It trusts its input: no quarantine, no deduplication, no checks (benchmarks/run.py generates
-- clean data). Placeholders, filled in by benchmarks/sql_script_baseline.py: {raw}, {rates}, {as_of},
-- {timezone}, {currency}. The connection's TimeZone is UTC (offset-less text is UTC, as in the warehouse).
create schema if not exists marts;

create or replace temp table rates as
select
    upper(trim(currency_code)) as currency_code,
    cast(valid_from as date) as valid_from,
    coalesce(
        lead(cast(valid_from as date)) over (partition by upper(trim(currency_code)) order by valid_from),
        date '9999-12-31'
    ) as valid_to,
    cast(units_per_usd as double) as units_per_usd
from read_csv('{rates}', header = true, all_varchar = true);

create or replace temp table orders as
with raw_orders as (
    select
        trim(order_id) as order_id,
        trim(customer_id) as customer_id,
        lower(trim(status)) as status,
        upper(trim(currency)) as currency_code,
        cast(trim(ordered_at) as timestamptz) at time zone 'UTC' as ordered_at
    from read_csv('{raw}/orders.csv', header = true, all_varchar = true)
),
dated as (
    select *, cast((ordered_at at time zone 'UTC') at time zone '{timezone}' as date) as order_date
    from raw_orders
)
select
    dated.*,
    cast(date_trunc('month', dated.order_date) as date) as order_month,
    dated.status = 'completed' and dated.order_date <= date '{as_of}' as is_valid_order,
    case
        when dated.currency_code = '{currency}' then cast(1 as double)
        else reporting_rate.units_per_usd / order_rate.units_per_usd
    end as exchange_rate
from dated
left join rates as order_rate
    on order_rate.currency_code = dated.currency_code
    and dated.order_date >= order_rate.valid_from and dated.order_date < order_rate.valid_to
left join rates as reporting_rate
    on reporting_rate.currency_code = '{currency}'
    and dated.order_date >= reporting_rate.valid_from and dated.order_date < reporting_rate.valid_to;

create or replace temp table lines as
select
    trim(order_id) as order_id,
    trim(product_id) as product_id,
    cast(cast(trim(quantity) as double) as bigint) as quantity,
    cast(trim(unit_price) as decimal(18, 2)) as unit_price,
    coalesce(cast(nullif(trim(discount_amount), '') as decimal(18, 2)), 0) as discount_amount
from read_csv('{raw}/order_items.csv', header = true, all_varchar = true);

create or replace temp table refunds as
select
    trim(refund_id) as refund_id,
    trim(order_id) as order_id,
    cast(trim(refunded_at) as timestamptz) at time zone 'UTC' as refunded_at,
    cast(trim(amount) as decimal(18, 2)) as amount
from read_csv('{raw}/refunds.csv', header = true, all_varchar = true);

-- valid orders, numbered per customer, with their amounts in the reporting currency
create or replace temp table valid_orders as
with items as (
    select order_id, sum(quantity * unit_price - discount_amount) as gross
    from lines group by order_id
),
counted as (
    select order_id, sum(amount) as refunded
    from refunds
    where cast((refunded_at at time zone 'UTC') at time zone '{timezone}' as date) <= date '{as_of}'
    group by order_id
),
converted as (
    select
        o.order_id, o.customer_id, o.ordered_at, o.order_date, o.order_month,
        cast(round(coalesce(i.gross, 0) * o.exchange_rate, 2) as decimal(18, 2)) as gross_revenue,
        cast(round(coalesce(c.refunded, 0) * o.exchange_rate, 2) as decimal(18, 2)) as refunded_amount
    from orders as o
    left join items as i on o.order_id = i.order_id
    left join counted as c on o.order_id = c.order_id
    where o.is_valid_order
)
select
    *,
    gross_revenue - refunded_amount as net_revenue,
    row_number() over (partition by customer_id order by ordered_at, order_id) as customer_order_number
from converted;

-- every revenue booking: an order's gross revenue in its month, each counted refund (telescoped) in its own month
create or replace temp table bookings as
with running as (
    select
        r.*,
        o.customer_id,
        o.exchange_rate,
        o.is_valid_order,
        sum(r.amount) over (
            partition by r.order_id order by r.refunded_at, r.refund_id
            rows between unbounded preceding and current row
        ) as running_amount,
        cast((r.refunded_at at time zone 'UTC') at time zone '{timezone}' as date) as refund_date
    from refunds as r
    inner join orders as o on r.order_id = o.order_id
)
select customer_id, order_month as booking_month, gross_revenue, cast(0 as decimal(18, 2)) as refunded_amount,
    gross_revenue as net_revenue
from valid_orders
union all
select
    customer_id,
    cast(date_trunc('month', refund_date) as date) as booking_month,
    cast(0 as decimal(18, 2)) as gross_revenue,
    cast(round(running_amount * exchange_rate, 2) as decimal(18, 2))
    - cast(round((running_amount - amount) * exchange_rate, 2) as decimal(18, 2)) as refunded_amount,
    -(cast(round(running_amount * exchange_rate, 2) as decimal(18, 2))
    - cast(round((running_amount - amount) * exchange_rate, 2) as decimal(18, 2))) as net_revenue
from running
where is_valid_order and refund_date <= date '{as_of}';

-- each customer's product types (categories) bought in valid orders, lines of at least one unit
create or replace temp table product_types as
with first_of_type as (
    select o.customer_id, lower(trim(p.category)) as category, min(o.order_date) as first_bought_on
    from lines as l
    inner join valid_orders as o on l.order_id = o.order_id
    inner join read_csv('{raw}/products.csv', header = true, all_varchar = true) as p
        on l.product_id = trim(p.product_id)
    where l.quantity > 0
    group by all
),
ranked as (
    select *, row_number() over (partition by customer_id order by first_bought_on, category) as type_number
    from first_of_type
)
select
    customer_id,
    count(*) as product_type_count,
    min(first_bought_on) as first_product_type_date,
    min(first_bought_on) filter (where type_number = 2) as second_product_type_date
from ranked
group by customer_id;

create or replace table marts.customer_lifetime_value as
with history as (
    select
        customer_id,
        arg_min(order_id, customer_order_number) as first_order_id,
        arg_max(order_id, customer_order_number) as last_order_id,
        min(order_date) as first_order_date,
        min(order_date) filter (where customer_order_number = 2) as second_order_date,
        max(order_date) as last_order_date,
        count(*) as valid_order_count,
        count(distinct order_date) as order_days,
        sum(gross_revenue) as gross_revenue,
        sum(refunded_amount) as refunded_amount,
        sum(net_revenue) as net_revenue
    from valid_orders
    group by customer_id
),
customers as (
    select
        trim(customer_id) as customer_id,
        upper(nullif(trim(country), '')) as country_code,
        lower(nullif(trim(acquisition_channel), '')) as acquisition_channel
    from read_csv('{raw}/customers.csv', header = true, all_varchar = true)
),
members as (
    select distinct trim(customer_id) as customer_id
    from read_csv('{raw}/loyalty_events.csv', header = true, all_varchar = true)
    where lower(trim(event_type)) = 'enrolled'
        and cast((cast(trim(occurred_at) as timestamptz) at time zone 'UTC') at time zone '{timezone}' as date)
        <= date '{as_of}'
)
select
    h.customer_id,
    h.first_order_id,
    h.last_order_id,
    cast(date_trunc('month', h.first_order_date) as date) as cohort_month,
    c.acquisition_channel,
    c.country_code,
    m.customer_id is not null as is_loyalty_member,
    h.valid_order_count >= 2 as is_repeat_customer,
    coalesce(t.product_type_count, 0) as product_type_count,
    coalesce(t.product_type_count, 0) >= 2 as is_multi_type_customer,
    h.valid_order_count,
    h.order_days,
    cast(h.gross_revenue as decimal(18, 2)) as gross_revenue,
    cast(h.refunded_amount as decimal(18, 2)) as refunded_amount,
    cast(h.net_revenue as decimal(18, 2)) as net_revenue,
    cast(h.net_revenue as decimal(18, 2)) as historical_clv,
    -- in whole cents, half away from zero (34.66 / 4 = 8.67): a double division would round exact halves down
    cast(sign(cast(h.gross_revenue * 100 as bigint))
        * ((2 * abs(cast(h.gross_revenue * 100 as bigint)) + h.valid_order_count) // (2 * h.valid_order_count))
        * 0.01 as decimal(18, 2)) as average_order_value,
    case
        when h.valid_order_count >= 2
            then cast(h.last_order_date - h.first_order_date as double) / (h.valid_order_count - 1)
    end as mean_days_between_orders,
    date '{as_of}' - h.last_order_date as days_since_last_order,
    h.first_order_date,
    h.second_order_date,
    h.last_order_date
from history as h
inner join customers as c on h.customer_id = c.customer_id
left join members as m on h.customer_id = m.customer_id
left join product_types as t on h.customer_id = t.customer_id;

create or replace temp table months as
select cast(unnest(generate_series(
    min(cohort_month), cast(date_trunc('month', date '{as_of}') as date), interval 1 month
)) as date) as month_start
from marts.customer_lifetime_value
having count(*) > 0;

create or replace table marts.repurchase_cohorts as
with cohorts as (
    select cohort_month, count(*) as cohort_size from marts.customer_lifetime_value group by cohort_month
),
activity as (
    select c.cohort_month, o.order_month as activity_month, count(distinct o.customer_id) as active_customers
    from valid_orders as o
    inner join marts.customer_lifetime_value as c on o.customer_id = c.customer_id
    group by all
),
second_orders as (
    select cohort_month, cast(date_trunc('month', second_order_date) as date) as activity_month,
        count(*) as new_repeat_customers
    from marts.customer_lifetime_value
    where second_order_date is not null
    group by all
),
revenue as (
    select c.cohort_month, b.booking_month as activity_month, sum(b.gross_revenue) as gross_revenue,
        sum(b.refunded_amount) as refunded_amount, sum(b.net_revenue) as net_revenue
    from bookings as b
    inner join marts.customer_lifetime_value as c on b.customer_id = c.customer_id
    group by all
),
joined as (
    select
        p.cohort_month,
        m.month_start as activity_month,
        datediff('month', p.cohort_month, m.month_start) as months_since_first_order,
        p.cohort_size,
        coalesce(a.active_customers, 0) as active_customers,
        sum(coalesce(s.new_repeat_customers, 0)) over to_date as cumulative_repeat_customers,
        coalesce(r.gross_revenue, 0) as gross_revenue,
        coalesce(r.refunded_amount, 0) as refunded_amount,
        coalesce(r.net_revenue, 0) as net_revenue,
        sum(coalesce(r.net_revenue, 0)) over to_date as cumulative_net_revenue
    from cohorts as p
    inner join months as m on p.cohort_month <= m.month_start
    left join activity as a on p.cohort_month = a.cohort_month and m.month_start = a.activity_month
    left join second_orders as s on p.cohort_month = s.cohort_month and m.month_start = s.activity_month
    left join revenue as r on p.cohort_month = r.cohort_month and m.month_start = r.activity_month
    window to_date as (
        partition by p.cohort_month order by m.month_start rows between unbounded preceding and current row
    )
)
select
    strftime(cohort_month, '%Y-%m') || '+' || lpad(cast(months_since_first_order as varchar), 3, '0')
        as cohort_period_id,
    cohort_month,
    months_since_first_order,
    activity_month,
    cohort_size,
    active_customers,
    cast(active_customers as double) / nullif(cohort_size, 0) as retention_rate,
    cumulative_repeat_customers,
    cast(cumulative_repeat_customers as double) / nullif(cohort_size, 0) as cumulative_repurchase_rate,
    cast(gross_revenue as decimal(18, 2)) as gross_revenue,
    cast(refunded_amount as decimal(18, 2)) as refunded_amount,
    cast(net_revenue as decimal(18, 2)) as net_revenue,
    cast(cumulative_net_revenue as decimal(18, 2)) as cumulative_net_revenue,
    cast(cumulative_net_revenue as double) / nullif(cohort_size, 0) as cumulative_net_revenue_per_customer
from joined;

create or replace table marts.loyalty_kpis_monthly as
with ordering as (
    select
        o.order_month as month_start,
        count(distinct o.customer_id) as customers_ordering,
        count(distinct o.customer_id) filter (where c.cohort_month = o.order_month) as new_customers,
        count(distinct o.customer_id) filter (where c.cohort_month < o.order_month) as returning_customers,
        count(*) as orders,
        sum(o.gross_revenue) as gross_revenue
    from valid_orders as o
    inner join marts.customer_lifetime_value as c on o.customer_id = c.customer_id
    group by all
),
booked as (
    select booking_month as month_start, sum(refunded_amount) as refunded_amount, sum(net_revenue) as net_revenue
    from bookings
    group by all
),
milestones as (
    select cohort_month as month_start, 'customer' as milestone from marts.customer_lifetime_value
    union all
    select cast(date_trunc('month', second_order_date) as date), 'repeat_customer'
    from marts.customer_lifetime_value where second_order_date is not null
    union all
    select cast(date_trunc('month', first_product_type_date) as date), 'one_type' from product_types
    union all
    select cast(date_trunc('month', second_product_type_date) as date), 'two_types'
    from product_types where second_product_type_date is not null
),
per_month as (
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
        m.month_start,
        sum(coalesce(p.new_customers, 0)) over to_date as cumulative_customers,
        sum(coalesce(p.new_repeat_customers, 0)) over to_date as cumulative_repeat_customers,
        sum(coalesce(p.new_one_type_customers, 0) - coalesce(p.new_two_type_customers, 0)) over to_date
            as single_type_customers,
        sum(coalesce(p.new_two_type_customers, 0)) over to_date as multi_type_customers
    from months as m
    left join per_month as p on m.month_start = p.month_start
    window to_date as (order by m.month_start rows between unbounded preceding and current row)
)
select
    m.month_start,
    coalesce(o.customers_ordering, 0) as customers_ordering,
    coalesce(o.new_customers, 0) as new_customers,
    coalesce(o.returning_customers, 0) as returning_customers,
    cast(o.new_customers as double) / nullif(o.customers_ordering, 0) as new_customer_share,
    cast(o.returning_customers as double) / nullif(o.customers_ordering, 0) as returning_customer_share,
    coalesce(o.orders, 0) as orders,
    cast(coalesce(o.gross_revenue, 0) as decimal(18, 2)) as gross_revenue,
    cast(coalesce(b.refunded_amount, 0) as decimal(18, 2)) as refunded_amount,
    cast(coalesce(b.net_revenue, 0) as decimal(18, 2)) as net_revenue,
    cast(sign(cast(o.gross_revenue * 100 as bigint))
        * ((2 * abs(cast(o.gross_revenue * 100 as bigint)) + o.orders) // (2 * nullif(o.orders, 0)))
        * 0.01 as decimal(18, 2)) as average_order_value,
    cast(o.orders as double) / nullif(o.customers_ordering, 0) as purchase_frequency,
    c.cumulative_customers,
    c.cumulative_repeat_customers,
    cast(c.cumulative_repeat_customers as double) / nullif(c.cumulative_customers, 0) as repurchase_ratio,
    c.single_type_customers,
    c.multi_type_customers,
    cast(c.multi_type_customers as double) / nullif(c.single_type_customers, 0) as upsell_rate,
    cast(c.multi_type_customers as double) / nullif((c.multi_type_customers + c.single_type_customers), 0)
        as multi_type_share
from months as m
left join ordering as o on m.month_start = o.month_start
left join booked as b on m.month_start = b.month_start
left join cumulative as c on m.month_start = c.month_start;
