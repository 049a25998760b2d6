-- One row per product. category is the product type of the upsell metrics.
select
    product_id,
    product_name,
    category,
    list_price
from {{ ref('stg_loyalty__products') }}
