-- Invariant: every mart's revenue adds up to the valid orders of fct_orders, to the cent: lifetime per customer,
-- monthly (refunds booked in their own month), per cohort, and per acquisition channel. Returns each mismatch.
with truth as (
    select
        sum(gross_revenue) as gross_revenue,
        sum(net_revenue) as net_revenue
    from {{ ref('fct_orders') }}
    where is_valid_order
),

marts as (
    select
        'customer_lifetime_value' as mart,
        sum(gross_revenue) as gross_revenue,
        sum(net_revenue) as net_revenue
    from {{ ref('customer_lifetime_value') }}
    union all
    select
        'int_revenue__bookings' as mart,
        sum(gross_revenue) as gross_revenue,
        sum(net_revenue) as net_revenue
    from {{ ref('int_revenue__bookings') }}
    union all
    select
        'repurchase_cohorts' as mart,
        sum(gross_revenue) as gross_revenue,
        sum(net_revenue) as net_revenue
    from {{ ref('repurchase_cohorts') }}
    union all
    select
        'loyalty_kpis_monthly' as mart,
        sum(gross_revenue) as gross_revenue,
        sum(net_revenue) as net_revenue
    from {{ ref('loyalty_kpis_monthly') }}
    union all
    select
        'acquisition_cac' as mart,
        null as gross_revenue,
        sum(cohort_historical_clv) as net_revenue
    from {{ ref('acquisition_cac') }}
    union all
    select
        'loyalty_program_lift' as mart,
        sum(gross_revenue) as gross_revenue,
        sum(historical_clv) as net_revenue
    from {{ ref('loyalty_program_lift') }}
)

select
    marts.*,
    truth.gross_revenue as expected_gross_revenue,
    truth.net_revenue as expected_net_revenue
from marts
cross join truth
where coalesce(marts.gross_revenue, truth.gross_revenue) <> truth.gross_revenue
    or coalesce(marts.net_revenue, 0) <> coalesce(truth.net_revenue, 0)
