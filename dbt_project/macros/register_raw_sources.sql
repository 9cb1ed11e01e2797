{#-
    register_raw_sources(): on-run-start hook that makes the landing zone queryable as dbt sources.

    On DuckDB every source table whose config.meta has `landing_zone: {folder: ..., required: ...}` becomes a
    view `<source schema>.<identifier>` over `$PERSONALIZE_RAW_DIR/<folder>/*` (CSV, CSV.gz or Parquet, any
    number of files, read as text so that staging decides how to parse and what to quarantine). The view has
    exactly the contract columns declared in the source YAML plus `_source_file`, the file's name relative to
    the landing zone (`shop_orders/2025-01.csv`).

    - A missing or empty folder gives an empty view with the contract columns (an error if `required`).
    - A file that lacks a column marked `meta.required` stops the build with an error naming the source, the
      file and the column.
    - Extra columns are ignored with a warning.

    On other adapters an EL tool has already loaded the raw tables, so the hook does nothing.
-#}
{% macro register_raw_sources() -%}
    {{ return(adapter.dispatch('register_raw_sources', 'personalize')()) }}
{%- endmacro %}

{% macro default__register_raw_sources() -%}
    {{ return('') }}
{%- endmacro %}

{% macro duckdb__register_raw_sources() -%}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set raw_dir = env_var('PERSONALIZE_RAW_DIR', 'data/raw').rstrip('/') -%}
    {%- set landing_sources = [] -%}
    {%- for node in graph.sources.values() -%}
        {%- if node.config.meta.get('landing_zone') -%}
            {%- do landing_sources.append(node) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- for node in landing_sources | sort(attribute='identifier') -%}
        {%- do run_query(personalize_raw_source_view_sql(node, raw_dir)) -%}
    {%- endfor -%}
    {{ return('') }}
{%- endmacro %}

{#- The create-view statement for one landing-zone source, after validating its files. -#}
{% macro personalize_raw_source_view_sql(node, raw_dir) -%}
    {%- set zone = node.config.meta['landing_zone'] -%}
    {%- set folder = raw_dir ~ '/' ~ zone['folder'] -%}
    {%- set relation = node.schema ~ '.' ~ node.identifier -%}
    {%- set contract_columns = node.columns.values() | map(attribute='name') | map('lower') | list -%}
    {%- set required_columns = [] -%}
    {%- for column in node.columns.values() -%}
        {%- if column.config.meta.get('required') -%}{%- do required_columns.append(column.name | lower) -%}{%- endif -%}
    {%- endfor -%}

    {%- set files = personalize_landing_files(folder) -%}
    {%- if files | length == 0 -%}
        {%- if zone.get('required') -%}
            {{ exceptions.raise_compiler_error(
                "Raw source '" ~ node.identifier ~ "' is required but " ~ folder ~ "/ has no .csv, .csv.gz or "
                ~ ".parquet files. Set PERSONALIZE_RAW_DIR or add an export there.") }}
        {%- endif -%}
        {{ log("raw source " ~ node.identifier ~ ": no files in " ~ folder ~ "/, building it empty", info=True) }}
        {%- set empty_columns = [] -%}
        {%- for name in contract_columns + ['_source_file'] -%}
            {%- do empty_columns.append('cast(null as varchar) as ' ~ adapter.quote(name)) -%}
        {%- endfor -%}
        {{ return('create schema if not exists ' ~ node.schema ~ '; create or replace view ' ~ relation
            ~ ' as select ' ~ empty_columns | join(', ') ~ ' where 1 = 0') }}
    {%- endif -%}

    {%- set selects = [] -%}
    {%- for file in files -%}
        {%- set reader = personalize_file_reader(file) -%}
        {%- set described = run_query('describe select * from ' ~ reader) -%}
        {%- set present = described.columns[0].values() | map('lower') | list -%}
        {%- set types = dict(zip(present, described.columns[1].values())) -%}
        {%- for name in required_columns if name not in present -%}
            {{ exceptions.raise_compiler_error(
                "Raw source '" ~ node.identifier ~ "': file " ~ file ~ " is missing required column '" ~ name
                ~ "'. Required columns: " ~ required_columns | join(', ') ~ ".") }}
        {%- endfor -%}
        {%- set extra = [] -%}
        {%- for name in present if name not in contract_columns -%}{%- do extra.append(name) -%}{%- endfor -%}
        {%- if extra -%}
            {%- do exceptions.warn("Raw source '" ~ node.identifier ~ "': file " ~ file
                ~ " has columns outside the contract, ignored: " ~ extra | join(', ')) -%}
        {%- endif -%}
        {%- set projections = [] -%}
        {%- for name in contract_columns -%}
            {%- if name in present and types[name] == 'VARCHAR' -%}
                {#- Already text (every CSV column, most Parquet exports): no cast to pay for per row. -#}
                {%- do projections.append(adapter.quote(name)) -%}
            {%- elif name in present -%}
                {%- do projections.append('cast(' ~ adapter.quote(name) ~ ' as varchar) as ' ~ adapter.quote(name)) -%}
            {%- else -%}
                {%- do projections.append('cast(null as varchar) as ' ~ adapter.quote(name)) -%}
            {%- endif -%}
        {%- endfor -%}
        {#- The file is named relative to the landing zone (`<folder>/<file name>`), not by its absolute path:
            incremental models remember which files they loaded by this name, so a landing zone that is moved or
            mounted elsewhere must not look like a zone of new files (every row would be loaded twice). -#}
        {%- set landing_name = zone['folder'] ~ '/' ~ file.split('/')[-1] -%}
        {%- do selects.append('select ' ~ projections | join(', ') ~ ", '" ~ landing_name | replace("'", "''")
            ~ "' as _source_file from " ~ reader) -%}
    {%- endfor -%}
    {{ log("raw source " ~ node.identifier ~ ": " ~ files | length ~ " file(s) in " ~ folder ~ "/", info=True) }}
    {{ return('create schema if not exists ' ~ node.schema ~ '; create or replace view ' ~ relation ~ ' as '
        ~ selects | join(' union all ')) }}
{%- endmacro %}

{#- Data files in a landing folder, sorted; hidden files and other extensions are skipped. -#}
{% macro personalize_landing_files(folder) -%}
    {%- set listing = run_query(
        "select file from glob('" ~ folder ~ "/*') "
        ~ "where regexp_matches(lower(file), '\\.(csv|csv\\.gz|parquet)$') "
        ~ "and not regexp_matches(file, '/\\.[^/]*$') order by file") -%}
    {{ return(listing.columns[0].values() | list) }}
{%- endmacro %}

{#- A DuckDB table function that reads one landing file as text columns. -#}
{% macro personalize_file_reader(file) -%}
    {%- if file.lower().endswith('.parquet') -%}
        {{ return("read_parquet('" ~ file ~ "')") }}
    {%- else -%}
        {{ return("read_csv('" ~ file ~ "', header = true, all_varchar = true)") }}
    {%- endif -%}
{%- endmacro %}
