{#- Fault injection for the nightly flow's failure tests: with var loyalty_fail_model set to a model's name, that
    model fails with a clear message (a pre-hook of every model, see dbt_project.yml). Empty otherwise. -#}
{% macro fault_injection() -%}
    {%- if var('loyalty_fail_model', none) and var('loyalty_fail_model') == this.name -%}
        select {{ fail_with("'injected failure in model " ~ this.name ~ " (var loyalty_fail_model)'") }}
    {%- endif -%}
{%- endmacro %}

{#- Corrupted rows for the nightly flow's data-test tests (tests/python/test_nightly_checks.py): with var
    loyalty_corrupt_rows = {model: <a base model>, fault: ...} that model's table is changed after it is built (a
    post-hook of every model, see dbt_project.yml), as a fault of the quarantine would leave it. Empty otherwise.
      fault null_value, column: <column>  one trusted row written tonight, of a customer with rows of an earlier
                                          night (an old customer), gets a null in that column
      fault duplicate_key                 a trusted row of an earlier night is copied into tonight's batch: its
                                          key is staged twice, tonight and on that earlier night -#}
{% macro fault_corruption() -%}
    {%- set fault = var('loyalty_corrupt_rows', none) -%}
    {%- if fault and fault['model'] == this.name -%}
        {%- set tonight = built_as_of() -%}
        {%- if fault['fault'] == 'null_value' -%}
            update {{ this }} set {{ fault['column'] }} = null
            where _record_key = (
                select min(_record_key) from {{ this }}
                where _built_as_of = {{ tonight }} and _quarantine_reason is null and _copy_number = 1
                    and customer_id in (select customer_id from {{ this }} where _built_as_of < {{ tonight }})
            ) and _built_as_of = {{ tonight }}
        {%- elif fault['fault'] == 'duplicate_key' -%}
            insert into {{ this }}
            select * replace (
                (select max(_batch) from {{ this }} where _built_as_of = {{ tonight }}) as _batch,
                {{ tonight }} as _built_as_of
            )
            from {{ this }}
            where _record_key = (
                select min(_record_key) from {{ this }}
                where _built_as_of < {{ tonight }} and _quarantine_reason is null and _copy_number = 1
            )
        {%- else -%}
            {{ exceptions.raise_compiler_error('loyalty_corrupt_rows: unknown fault ' ~ fault) }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
