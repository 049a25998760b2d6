{#- dbt unit tests look up the column types of every input relation by its name; a raw source is read in place
    from a file (an external location), so it has no catalog entry. For the raw sources this describes the file
    reader the landing check configured (var('raw_sources')); for everything else it is dbt-duckdb's own macro
    (DESCRIBE of the relation). -#}
{% macro duckdb__get_columns_in_relation(relation) -%}
  {%- set raw_sources = var('raw_sources', {}) -%}
  {%- if relation.schema == 'raw' and relation.identifier in raw_sources -%}
    {%- set described = 'select * from ' ~ raw_sources[relation.identifier] -%}
  {%- else -%}
    {%- set described = relation.render() -%}
  {%- endif -%}
  {% call statement('get_columns_in_relation', fetch_result=True) %}
      select
          column_name,
          column_type as data_type,
          cast(null as bigint) as character_maximum_length,
          cast(null as bigint) as numeric_precision,
          cast(null as bigint) as numeric_scale
      from (describe {{ described }})
  {% endcall %}
  {{ return(sql_convert_columns_in_relation(load_result('get_columns_in_relation').table)) }}
{%- endmacro %}
