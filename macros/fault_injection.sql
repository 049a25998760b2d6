{#- Fault injection for the nightly flow's failure tests: with var loyalty_fail_model set to a model's name, that
    model fails with a clear message (a pre-hook of every model, see dbt_project.yml). Empty otherwise. -#}
{% macro fault_injection() -%}
    {%- if var('loyalty_fail_model', none) and var('loyalty_fail_model') == this.name -%}
        select error('injected failure in model {{ this.name }} (var loyalty_fail_model)')
    {%- endif -%}
{%- endmacro %}
