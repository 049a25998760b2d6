{#- Net Promoter Score (docs/metrics.md, survey metrics). -#}

{#- NPS category of a 0-10 recommend score: 9-10 promoter, 7-8 passive, 0-6 detractor. Scores outside 0-10 are
    quarantined in staging and never reach this macro; anything else would give null, never a clipped value. -#}
{% macro nps_category(score) -%}
    case
        when {{ score }} between 9 and 10 then 'promoter'
        when {{ score }} between 7 and 8 then 'passive'
        when {{ score }} between 0 and 6 then 'detractor'
    end
{%- endmacro %}

{#- Net Promoter Score of a group of responses: 100 * (promoters - detractors) / responses. Always recomputed
    from the counts of the group (never an average of NPS values); null without responses. -#}
{% macro nps(promoters, detractors, responses) -%}
    (100.0 * ({{ promoters }} - {{ detractors }}) / nullif({{ responses }}, 0))
{%- endmacro %}

{#- 95 % margin of error of an NPS, in NPS points: 100 * 1.96 * sqrt((P + D - (P - D)^2) / n), P and D the
    promoter and detractor shares. Null without responses. -#}
{% macro nps_margin_of_error(promoters, detractors, responses) -%}
    (100.0 * 1.96 * sqrt(
        (cast({{ promoters }} as double) / nullif({{ responses }}, 0)
            + cast({{ detractors }} as double) / nullif({{ responses }}, 0)
            - power((cast({{ promoters }} as double) - {{ detractors }}) / nullif({{ responses }}, 0), 2))
        / nullif({{ responses }}, 0)
    ))
{%- endmacro %}
