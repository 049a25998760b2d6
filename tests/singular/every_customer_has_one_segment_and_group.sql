-- Invariant: the customer-grain marts cover the same customers: each customer of customer_lifetime_value has
-- one customer_segments row, is counted once in acquisition_cac and once in loyalty_program_lift.
with counts as (
    select
        (select count(*) from {{ ref('customer_lifetime_value') }}) as customers,
        (select count(*) from {{ ref('customer_segments') }}) as segmented,
        (select coalesce(sum(new_customers), 0) from {{ ref('acquisition_cac') }}) as acquired,
        (select coalesce(sum(customers), 0) from {{ ref('loyalty_program_lift') }}) as in_lift_groups
)

select *
from counts
where segmented <> customers or acquired <> customers or in_lift_groups <> customers
