{#- The raw entities of the data contract (src/loyalty/contract.py is the Python twin; a test keeps them equal). -#}
{% macro raw_entities() -%}
    {{ return(['customers', 'products', 'orders', 'order_items', 'refunds', 'survey_responses',
               'marketing_spend', 'loyalty_events', 'engagement_events']) }}
{%- endmacro %}
