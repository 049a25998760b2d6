-- A calendar in the reporting timezone: every day from the first month with a signup or order to the end of the
-- month of the as-of date (or of the last order, if later). The days of staged orders and signups (every order is
-- in fct_orders, every customer in dim_customers), so the calendar depends on no fact or other dimension.
with order_days as (
    select
        min({{ to_reporting_date('ordered_at') }}) as first_order_date,
        max({{ to_reporting_date('ordered_at') }}) as last_order_date
    from {{ ref('stg_loyalty__orders') }}
),

signup_days as (
    select min({{ to_reporting_date('signed_up_at') }}) as first_signup_date
    from {{ ref('stg_loyalty__customers') }}
),

bounds as (
    select
        cast(date_trunc('month', least(
            order_days.first_order_date,
            signup_days.first_signup_date,
            {{ as_of_date() }}
        )) as date) as first_day,
        cast(last_day(greatest(
            order_days.last_order_date,
            {{ as_of_date() }}
        )) as date) as last_day
    from order_days
    cross join signup_days
),

days as (
    select {{ date_series('first_day', 'last_day', 'interval 1 day') }} as date_day
    from bounds
)

select
    date_day,
    cast(date_trunc('week', date_day) as date) as week_start,
    cast(date_trunc('month', date_day) as date) as month_start,
    cast(date_trunc('quarter', date_day) as date) as quarter_start,
    cast(date_trunc('year', date_day) as date) as year_start,
    year(date_day) as year_number,
    month(date_day) as month_number,
    {{ iso_day_of_week('date_day') }} as iso_day_of_week,
    {{ day_name('date_day') }} as day_name,
    {{ month_name('date_day') }} as month_name,
    {{ iso_day_of_week('date_day') }} >= 6 as is_weekend,
    date_day = last_day(date_day) as is_month_end,
    date_day > {{ as_of_date() }} as is_after_as_of
from days
