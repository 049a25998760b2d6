{#- Share of wallet (docs/metrics.md, survey metrics). -#}

{#- Share of wallet of one survey response: net revenue over the 12 months up to the response date / (12 x the
    monthly category spend reported), capped at 1. A reported spend of 0 with revenue is capped at 1; with no
    revenue either it is undefined (null). -#}
{% macro share_of_wallet(net_revenue_12m, monthly_category_spend) -%}
    case
        when {{ monthly_category_spend }} > 0
            then least(cast({{ net_revenue_12m }} as double) / (12 * {{ monthly_category_spend }}), 1.0)
        when {{ monthly_category_spend }} = 0 and {{ net_revenue_12m }} > 0 then 1.0
    end
{%- endmacro %}

{#- Whether share_of_wallet was capped: the uncapped ratio exceeds 1. -#}
{% macro share_of_wallet_is_capped(net_revenue_12m, monthly_category_spend) -%}
    ({{ net_revenue_12m }} > 12 * {{ monthly_category_spend }})
{%- endmacro %}
