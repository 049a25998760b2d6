{#- Customer Loyalty Index, CLI (docs/metrics.md, survey metrics). -#}

{#- Customer Loyalty Index of one response: 10 * mean(recommend, repurchase intent, cross-buy intent), 0-100;
    null when any of the three is missing (null arithmetic propagates). -#}
{% macro cli_score(recommend, repurchase_intent, cross_buy_intent) -%}
    round(10.0 * ({{ recommend }} + {{ repurchase_intent }} + {{ cross_buy_intent }}) / 3.0, 6)
{%- endmacro %}

{#- CLI band: [0, 40) below_average, [40, 75) average, [75, 100] above_average. -#}
{% macro cli_band(cli) -%}
    case
        when {{ cli }} < 40 then 'below_average'
        when {{ cli }} < 75 then 'average'
        when {{ cli }} <= 100 then 'above_average'
    end
{%- endmacro %}
