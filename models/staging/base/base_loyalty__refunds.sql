-- Every raw refund row, typed, with the reason it cannot be trusted (null when it can).
-- A refund is in its order's currency. A refund of a cancelled order (nothing was paid) and a refund dated before
-- its order are held back. Refunds of one order may not add up to more than the order's gross revenue: taken in
-- landing order (batch, then refunded_at, then refund_id), the refund that would push the total past it (and any
-- after it) is held back. Refunds are few: this model is rebuilt in full every night, against the orders and lines
-- staged so far.
with framed as (
    {{ frame_raw_rows(source('raw', 'refunds'), ['refund_id']) }}
),

typed as (
    select
        -- ids
        {{ clean_text('refund_id') }} as refund_id,
        {{ clean_text('order_id') }} as order_id,
        -- numerics
        {{ parse_money('amount') }} as amount,
        -- timestamps
        {{ parse_utc_timestamp('refunded_at') }} as refunded_at,
        -- checks
        (
            {{ clean_text('order_id') }} is null
            or {{ clean_text('amount') }} is null
            or {{ clean_text('refunded_at') }} is null
        ) as _value_missing,
        {{ is_timestamp_out_of_range('refunded_at') }} as _timestamp_out_of_range,
        {{ is_unparseable_number('amount') }} as _number_unparseable,
        {{ is_out_of_range('amount', 'money') }} as _amount_out_of_range,
        {{ framing_columns() }}
    from framed
),

order_gross as (
    select
        orders.order_id,
        orders.status,
        orders.ordered_at,
        coalesce(sum({{ line_gross_revenue('items.quantity', 'items.unit_price', 'items.discount_amount') }}), 0)
            as gross_revenue
    from {{ ref('stg_loyalty__orders') }} as orders
    left join {{ ref('stg_loyalty__order_items') }} as items on orders.order_id = items.order_id
    -- only the orders that have refunds: a few percent of all
    where orders.order_id in (select {{ clean_text('order_id') }} from {{ source('raw', 'refunds') }})
    group by orders.order_id, orders.status, orders.ordered_at
),

checked as (
    select
        typed.*,
        order_gross.order_id is not null as _order_known,
        order_gross.gross_revenue as _order_gross_revenue,
        case
            {{ key_reasons('typed') }}
            when typed._value_missing then 'missing_value'
            when typed.refunded_at is null and not typed._timestamp_out_of_range then 'unparseable_timestamp'
            when typed._timestamp_out_of_range then 'timestamp_out_of_range'
            when typed._number_unparseable then 'unparseable_number'
            when typed._amount_out_of_range then 'amount_out_of_range'
            when typed.amount < 0 then 'negative_amount'
            when order_gross.order_id is null then 'unknown_order'
            when order_gross.status = 'cancelled' then 'refund_of_cancelled_order'
            when typed.refunded_at < order_gross.ordered_at then 'refund_before_order'
        end as _row_reason
    from typed
    left join order_gross on typed.order_id = order_gross.order_id
),

running as (
    -- running total of the otherwise-acceptable refunds of each order
    select
        _batch,
        _record_key,
        _row_hash,
        _copy_number,
        sum(amount) over (
            partition by order_id
            order by _batch, refunded_at, refund_id
            rows between unbounded preceding and current row
        ) as _refunded_to_date
    from checked
    where _row_reason is null and _copy_number = 1
),

verdict as (
    select
        checked.refund_id,
        checked.order_id,
        checked.amount,
        checked.refunded_at,
        coalesce(
            checked._row_reason,
            case when running._refunded_to_date > checked._order_gross_revenue then 'refund_exceeds_order' end
        ) as _quarantine_reason,
        {{ raw_row_columns('checked') }}
    from checked
    left join running
        on checked._batch = running._batch
            and checked._record_key = running._record_key
            and checked._row_hash = running._row_hash
            and checked._copy_number = running._copy_number
)

{{ keep_raw_row_of_quarantined('verdict') }}
