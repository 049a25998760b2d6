-- The predicted-CLV settings as one row, so the Python models (which cannot read dbt vars) take them from the
-- same checked macros as the SQL models: as-of date, time unit, horizon and discount rate.
select
    {{ as_of_date() }} as as_of_date,
    '{{ clv_time_unit() }}' as time_unit,
    {{ clv_time_unit_days() }} as time_unit_days,
    {{ clv_horizon_months() }} as horizon_months,
    cast({{ clv_annual_discount_rate() }} as double) as annual_discount_rate
