{#- dbt unit tests look up the column types of every input relation by its name; a raw source is read in place
    from a file (an external location), so it has no catalog entry. For a raw entity this describes the contract's
    columns (the source's yml columns, all text) and _batch, read from the file reader the landing check configured
    (night_raw_sources in night.sql): a unit test's fixture rows never depend on the extra columns a file happens
    to have, and no column name from a file reaches the test's SQL. For the landing check's own tables
    (malformed_records, landed_files) it describes the reader; for everything else it is dbt-duckdb's own macro
    (DESCRIBE). -#}
{% macro duckdb__get_columns_in_relation(relation) -%}
  {%- set raw_sources = night_raw_sources() -%}
  {%- if relation.schema == 'raw' and relation.identifier in raw_sources -%}
    {%- set entity = relation.identifier -%}
    {%- if entity in raw_entities() -%}
      {%- set source_node = graph.sources.values() | selectattr('source_name', 'equalto', 'raw')
          | selectattr('name', 'equalto', entity) | first -%}
      {%- set described = 'select ' ~ (source_node.columns.keys() | join(', ')) ~ ', _batch from '
          ~ raw_sources[entity] -%}
    {%- else -%}
      {%- set described = 'select * from ' ~ raw_sources[entity] -%}
    {%- endif -%}
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
