-- Every customer of the predictive models' input has exactly one prediction row with the same history, and no
-- prediction row lacks an input customer. Returns the customers where that fails.
select coalesce(history.customer_id, predictions.customer_id) as customer_id
from {{ ref('int_clv__customer_history') }} as history
full outer join {{ ref('clv_customer_predictions') }} as predictions
    on history.customer_id = predictions.customer_id
where history.customer_id is null
    or predictions.customer_id is null
    or history.frequency is distinct from predictions.frequency
    or history.recency is distinct from predictions.recency
    or history.tenure is distinct from predictions.tenure
