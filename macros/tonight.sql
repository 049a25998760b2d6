{#- Data tests of an incremental night read what the night wrote, not every row.

    Rows an incremental night did not write are the rows that passed the same data tests on the night that wrote
    them (a night publishes only when every test passes, and a change of models, macros or settings makes the
    next night a full rebuild). A row-level check therefore reads only tonight's rows: config `where: __tonight__`
    (get_where_subquery below). Uniqueness compares tonight's keys with all keys (tests unique_tonight and
    unique_combination_of_columns with tonight=true): a key written tonight that collides with an old key fails.

    Tonight's rows of a model (tonight_rows):
      - a table with lineage column _built_as_of (the incremental base models, fct_orders, fct_order_items): the
        rows with _built_as_of = built_as_of(). On a full build every row has it.
      - a staging view over such a base model (staged_rows in macros/raw_rows/verdicts.sql): the base model's
        trusted rows written tonight, read from the base table itself (the view hides _built_as_of).
    On a full build (build_mode, a night value, is not 'incremental', as on a plain `dbt build`) every test reads
    every row.
    Where tonight's rows are not enough (a model rebuilt every night whose rows can change for old customers, a
    parent that is rebuilt every night) the test has no __tonight__ and reads everything: DECISIONS.md lists which
    tests are scoped and why. -#}

{#- Whether this run is an incremental night (build_mode, which the nightly planner sets: night.sql). -#}
{% macro tonight_is_incremental() -%}
    {{ return(night_value('build_mode', 'full') == 'incremental') }}
{%- endmacro %}

{#- The model node whose table or view is `relation`. -#}
{% macro tonight_node_of(relation) -%}
    {%- for node in graph.nodes.values() -%}
        {%- if node.resource_type == 'model' and node.alias | lower == relation.identifier | lower
            and node.schema | lower == relation.schema | lower -%}
            {{ return(node) }}
        {%- endif -%}
    {%- endfor -%}
    {{ exceptions.raise_compiler_error('tonight_rows: no model builds ' ~ relation) }}
{%- endmacro %}

{#- Tonight's rows of `relation` (a model): the relation itself on a full build, else a subquery. -#}
{% macro tonight_rows(relation) -%}
    {%- if not execute or not tonight_is_incremental() -%}{{ return(relation) }}{%- endif -%}
    {%- set node = tonight_node_of(relation) -%}
    {%- set staged = modules.re.search("staged_rows\\(\\s*['\"](\\w+)['\"]", node.raw_code) -%}
    {%- if staged -%}
        {#- the filter and the hidden columns of staged_rows (macros/raw_rows/verdicts.sql), on the base table -#}
        {%- set base = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model')
            | selectattr('name', 'equalto', staged.group(1)) | first -%}
        {%- set base_relation = api.Relation.create(database=base.database, schema=base.schema, identifier=base.alias) -%}
        {%- if '_built_as_of' not in base.columns -%}
            {{ exceptions.raise_compiler_error('tonight_rows: ' ~ base.name ~ ' has no column _built_as_of') }}
        {%- endif -%}
        {{ return('(select ' ~ star_except(staged_hidden_columns()) ~ ' from ' ~ base_relation ~ ' where '
            ~ staged_filter() ~ ' and _built_as_of = ' ~ built_as_of() ~ ')') }}
    {%- endif -%}
    {%- if '_built_as_of' not in node.columns -%}
        {{ exceptions.raise_compiler_error('tonight_rows: ' ~ node.name ~ ' has no column _built_as_of') }}
    {%- endif -%}
    {{ return('(select * from ' ~ relation ~ ' where _built_as_of = ' ~ built_as_of() ~ ')') }}
{%- endmacro %}

{#- dbt's get_where_subquery (the relation a data test reads), with one more filter: `__tonight__` in a test's
    where config reads tonight's rows only (tonight_rows), and is true on a full build. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where and '__tonight__' in where -%}
        {%- set rest = where | replace('__tonight__', 'true') -%}
        {%- set rows = tonight_rows(relation) -%}
        {%- if rows is string or rest | trim != 'true' -%}
            {{ return('(select * from ' ~ rows ~ ' as tonight where ' ~ rest ~ ') dbt_subquery') }}
        {%- endif -%}
        {{ return(relation) }}
    {%- endif -%}
    {{ return(adapter.dispatch('get_where_subquery', 'dbt')(relation)) }}
{%- endmacro %}
