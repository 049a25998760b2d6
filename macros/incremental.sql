{#- Incremental nights: whether a model builds incrementally, the lineage column _built_as_of, the as-of date of
    the warehouse a night builds on, and the customers an incremental model rebuilds tonight. -#}

{#- is_incremental(), but false where there is no relation to be incremental on (dbt unit tests). -#}
{% macro incremental_run() -%}
    {%- if this is none -%}{{ return(false) }}{%- endif -%}
    {{ return(is_incremental()) }}
{%- endmacro %}

{#- Lineage for incremental nights: the as-of date of the build that last wrote a row (column _built_as_of of
    the base models and the incremental facts). Incremental models after staging find what changed tonight by it.
    Rows written by an earlier build with the same as-of date count as written tonight too: running a night again
    redoes its customers, which gives the same rows. -#}
{% macro built_as_of() -%}
    {{ as_of_date() }}
{%- endmacro %}

{#- The as-of date of the warehouse an incremental night builds on (previous_as_of, which the nightly planner
    sets from the published warehouse: night.sql). Orders, refunds and events dated between it and tonight's as-of
    date change their verdicts, so their customers are rebuilt. Without it (a plain incremental `dbt build`) every
    date counts as crossed and every customer is rebuilt: slower, never wrong. -#}
{% macro previous_as_of_date() -%}
    {%- set previous = night_value('previous_as_of') -%}
    {%- if previous -%}date '{{ previous }}'{%- else -%}date '0001-01-01'{%- endif -%}
{%- endmacro %}

{#- The customers an incremental fact rebuilds tonight: those with rows written by tonight's build in `relation`
    (an upstream incremental fact). -#}
{% macro customers_written_tonight(relation) -%}
    (select distinct customer_id from {{ relation }} where _built_as_of = {{ built_as_of() }})
{%- endmacro %}

{#- Whether the incremental model `model_name` builds incrementally in this run, as its own incremental_run() will
    find: its table exists and this is no full refresh. For a model that prepares that model's night and runs before
    it (the list of the customers it rebuilds), where is_incremental() would answer for the wrong model.
    dbt unit tests override it. -#}
{% macro incremental_run_of(model_name) -%}
    {%- if not execute -%}{{ return(false) }}{%- endif -%}
    {%- set node = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model')
        | selectattr('name', 'equalto', model_name) | first -%}
    {%- set relation = adapter.get_relation(node.database, node.schema, node.alias) -%}
    {%- set full_refresh = node.config.get('full_refresh') -%}
    {%- if full_refresh is none -%}{%- set full_refresh = flags.FULL_REFRESH -%}{%- endif -%}
    {{ return(relation is not none and relation.type == 'table' and node.config.get('materialized') == 'incremental'
        and not full_refresh) }}
{%- endmacro %}

{#- The materialization of a model that an incremental night builds incrementally: 'incremental' on DuckDB. On
    Spark, 'table': the models' strategy (delete the rows of tonight's keys or customers, insert them again) needs
    DELETE, which Spark's Parquet tables do not have, so every Spark build is a full one (docs/scale-out.md says
    how a cluster with Delta or Iceberg tables would build incrementally). -#}
{% macro incremental_materialization() -%}
    {{ return('table' if target.type == 'spark' else 'incremental') }}
{%- endmacro %}
