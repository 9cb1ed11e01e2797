{#-
    The incremental identity graph. int_identity_edges appends the new edges of events and records and
    deletes the record edges that have gone; int_identity_components and int_identity_map rewrite only the
    components that those changes touch. These pre-hooks keep each model equal to a full refresh: they
    delete what has gone, or empty a model when that cannot be known cheaply, and the model then writes
    every row, as a full refresh does.
-#}

{#-
    reset_stale_identity_edges(): first pre-hook of int_identity_edges. On an incremental build, deletes
    every edge when an event edge it holds may no longer be evidence (the build then writes every edge):
      - the as-of date moved back (var as_of): evidence after the new date no longer counts;
      - the as-of date moved forward past events loaded earlier: those events were left out by the earlier
        date, and an append reads only events loaded since (with the default as-of date, the data clock, no
        clean event is ever later than the as-of date, so this happens only with an explicit var as_of);
      - an event loaded since the last build has an earlier clean delivery whose identifiers, user agent
        (bot or not) or time differ: the event was replaced, and the edge of its earlier version may have
        had no other evidence.
    Otherwise every held event edge is still evidence, and only record edges can have gone
    (delete_gone_record_edges).

    Only superseded deliveries (base_*.is_superseded) are compared: of an event's clean deliveries exactly
    one is not superseded, and it is the one the staging model holds, so no other clean delivery can differ
    from the staging row. Superseded deliveries are few (re-deliveries), so the base models are read for a
    narrow slice of their rows instead of joining every delivery (the dearest step of the daily run's
    identity graph: 1.0 of 1.3 s CPU at 100k customers).
-#}
{% macro reset_stale_identity_edges() -%}
    {%- if identity_edges_build_state().reset -%}
        delete from {{ this }}
    {%- else -%}
        -- Every held edge is still evidence: nothing to reset.
        select 1 as nothing_to_reset
    {%- endif -%}
{%- endmacro %}

{#-
    identity_edges_build_state(): for an incremental build of int_identity_edges, what its previous build
    was and whether the pre-hook reset_stale_identity_edges must empty the table (see there), as a dict:
    `loaded_at` (the latest loaded_at it holds, a literal, or none when it is empty or the build is not
    incremental) and `reset` (true or false). The model reads the events loaded after `loaded_at`, or every
    event when `reset` is true. The model's SQL and the pre-hook each look it up (the model compiles, then
    its pre-hooks run, before anything is written), so both see the same state. Looked up when dbt executes
    and written into the SQL as constants: the warehouse then skips the blocks of events loaded before
    (a join against the previous build's latest loaded_at read every event's identifiers).
-#}
{% macro identity_edges_build_state() -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return({'loaded_at': none, 'reset': false}) }}
    {%- endif -%}
    {%- set previous = run_query(
        'select cast(max(loaded_at) as varchar), cast(max(built_as_of_date) as varchar) from ' ~ this
    ).rows[0] -%}
    {%- if previous[0] is none -%}
        {{ return({'loaded_at': none, 'reset': false}) }}
    {%- endif -%}
    {%- set loaded_at = "cast('" ~ previous[0] ~ "' as " ~ dbt.type_timestamp() ~ ")" -%}
    {%- set previous_as_of_date = "cast('" ~ previous[1] ~ "' as date)" -%}
    {%- set as_of_date = run_query(
        'select cast(as_of_date as varchar) from ' ~ ref('stg_data_clock')
    ).columns[0].values()[0] -%}
    {%- set as_of_date = "cast('" ~ as_of_date ~ "' as date)" -%}
    {#- Each event model, its base model of every delivery, and the columns its edges come from. -#}
    {%- set event_models = [
        (ref('stg_web__events'), ref('base_web__events'), ['anonymous_id', 'user_id', 'user_agent', 'event_at']),
        (ref('stg_esp__events'), ref('base_esp__events'), ['email', 'event_at']),
    ] -%}
    {%- set check -%}
        select 1
        where {{ previous_as_of_date }} > {{ as_of_date }}
        {%- for events, deliveries, edge_columns in event_models %}

        union all

        select 1
        from {{ events }}
        where
            loaded_at <= {{ loaded_at }}
            and event_at >= {{ as_of_end_at(previous_as_of_date) }}
            and event_at < {{ as_of_end_at(as_of_date) }}

        union all

        select 1
        from {{ events }} as events_since
        inner join {{ deliveries }} as deliveries
            on events_since.event_id = deliveries.event_id
        where
            events_since.loaded_at > {{ loaded_at }}
            and deliveries.quarantine_reason is null
            and deliveries.is_superseded
            and (
                {%- for column in edge_columns %}
                {{ 'or ' if not loop.first }}deliveries.{{ column }} is distinct from events_since.{{ column }}
                {%- endfor %}
            )
        {%- endfor %}
    {%- endset -%}
    {%- set reset = run_query('select count(*) > 0 from (' ~ check ~ ') as stale_evidence').columns[0].values()[0] -%}
    {{ return({'loaded_at': loaded_at, 'reset': reset}) }}
{%- endmacro %}

{#-
    delete_gone_record_edges(): second pre-hook of int_identity_edges. On an incremental build, deletes the
    held edges of records (CRM, orders, consent, privacy) that int_identity_record_edges no longer has: an
    order or CRM record whose current version changed, for instance. int_identity_components finds the
    nodes that lost them by their record_edge_count.
-#}
{% macro delete_gone_record_edges() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where
            matched_by not in {{ identity_event_edge_kinds() }}
            and not exists (
                select 1
                from {{ ref('int_identity_record_edges') }} as record_edges
                where
                    record_edges.left_node = {{ this }}.left_node
                    and record_edges.right_node = {{ this }}.right_node
                    and record_edges.matched_by = {{ this }}.matched_by
            )
    {%- endif -%}
{%- endmacro %}

{#-
    reset_when_rewritten(upstream): pre-hook of int_identity_components and int_identity_map. On an
    incremental build, deletes every row when every row of `upstream` was written after this model's last
    build: upstream was rebuilt from scratch (a reset or a full refresh), so rows may have gone, and only
    rebuilding every row is sure to equal a full refresh.
-#}
{% macro reset_when_rewritten(upstream) -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where (select min(loaded_at) from {{ upstream }}) > (select max(loaded_at) from {{ this }})
    {%- endif -%}
{%- endmacro %}

{#-
    delete_gone_identifiers(): pre-hook of int_identity_map. On an incremental build, deletes the
    identifiers that are no longer a node of int_identity_components (every edge that named them has gone).
    Only identifiers explained by a record edge are looked up: one explained by an event edge (web_login,
    anonymous_visit, esp_contact) still has that edge, because event edges only go when
    int_identity_edges is emptied, and then reset_when_rewritten has emptied this model.
-#}
{% macro delete_gone_identifiers() -%}
    {%- if is_incremental() -%}
        {#- `not in` rather than a correlated `not exists`, which DuckDB runs as a mark join plus a grouping
            of the map's rows: 1.8-2.9 s CPU at a million customers instead of 0.7. The same rows go: a node
            (type:identifier) is never null, so `not in` never meets a null. -#}
        delete from {{ this }}
        where
            matched_by not in {{ identity_event_edge_kinds() }}
            and identifier_type || ':' || identifier not in (
                select components.node
                from {{ ref('int_identity_components') }} as components
            )
    {%- endif -%}
{%- endmacro %}

{#-
    delete_gone_nodes(): post-hook of int_identity_components. Deletes the rows an incremental build wrote
    without a component: nodes of recomputed components that no edge names any more.
-#}
{% macro delete_gone_nodes() -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where component_node is null
    {%- endif -%}
{%- endmacro %}

{#-
    identity_map_rebuilt_since_sessions(): for an incremental build of int_identity_map's readers
    (int_web_sessions), whether every row of int_identity_map was written after the model's last build
    (the map was rebuilt from scratch, or never read), so that identifiers may have gone from it. Otherwise
    only the rows it wrote since can differ from what the model last read.
-#}
{% macro identity_map_rebuilt_since_sessions() -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set rebuilt = run_query(
        'select coalesce(min(loaded_at) > (select max(loaded_at) from ' ~ this ~ '), true) from '
        ~ ref('int_identity_map')
    ).columns[0].values()[0] -%}
    {{ return(rebuilt) }}
{%- endmacro %}

{#-
    identity_edge_columns(): the columns of an identity edge, from left_type, left_identifier, right_type,
    right_identifier and matched_by: its two graph nodes and its kind, which together are its key.
    int_identity_record_edges and the event edges of int_identity_edges both use it, because an incremental
    build compares the edges they write by that key and the graph joins them by node: one definition keeps
    them the same. Only the nodes are stored: each identifier written once more, or a hash of the edge as
    its key, cost int_identity_edges a third of its CPU at a million customers (17.4 against 11.8 s).
-#}
{% macro identity_edge_columns() -%}
    left_type || ':' || left_identifier as left_node,
    right_type || ':' || right_identifier as right_node,
    matched_by
{%- endmacro %}

{#-
    identity_event_edge_kinds(): the matched_by values of event edges (web and ESP events), as a SQL list.
    Every other kind is a record edge of int_identity_record_edges. Event edges only ever accumulate; record
    edges can go, which the incremental identity models look for.
-#}
{% macro identity_event_edge_kinds() -%}
    ('web_login', 'anonymous_visit', 'esp_contact')
{%- endmacro %}

{#-
    identity_rows_written_by_this_run(): for a data test over the whole identity graph
    (assert_identity_components_converged), the predicate on int_identity_map rows that limits it to the
    rows this invocation wrote (rows_written_by_this_run), or `1 = 1` (every row). Limited only when
    int_identity_components and int_identity_map both run in this invocation: they then rewrite every
    component that an edge appended since their own last build touches, in this or an earlier invocation.
    Also `1 = 1` when the invocation wrote every row of the map (a first build, or a rebuild from scratch):
    the same edges are checked, and joining every edge to the map directly cost a third of looking each
    one up among the written nodes (3 against 9 s of CPU at a million customers).
-#}
{% macro identity_rows_written_by_this_run() -%}
    {%- set components_id = 'model.' ~ project_name ~ '.int_identity_components' -%}
    {%- set map_id = 'model.' ~ project_name ~ '.int_identity_map' -%}
    {%- if execute and components_id in selected_resources and map_id in selected_resources -%}
        {%- set this_run = rows_written_by_this_run() -%}
        {%- if this_run != '1 = 1' -%}
            {%- set older_rows = run_query(
                'select count(*) from (select 1 from ' ~ ref('int_identity_map') ~ ' where not (' ~ this_run
                ~ ') limit 1) as older_rows'
            ).columns[0].values()[0] -%}
            {%- if older_rows > 0 -%}
                {{ return(this_run) }}
            {%- endif -%}
        {%- endif -%}
    {%- endif -%}
    {{ return('1 = 1') }}
{%- endmacro %}

{#-
    The incremental record edges (int_identity_record_edges). An edge of a record source exists when at least
    one record current at the as-of date carries it, so a build recomputes every edge that shares a key with
    a record that may have changed since the previous build, from every record of that key, and keeps the
    other edges, which no changed record can carry or have carried. The keys are the identifier each edge
    kind is grouped by: a shop customer id for order_email and shop_account, the email for guest_checkout,
    consent and privacy edges, the CRM customer id for CRM edges. A record may have changed when:
      - orders: stg_shop__order_versions rewrote the order since the previous build (loaded_at; it rewrites
        every version of an order that got a new delivery, so the keys of its version current then are still
        among its rows), or one of its version's timestamps (created_at, valid_from_at, valid_to_at) lies
        between the previous and the current end of the as-of date: only those versions enter or leave;
      - CRM records, consent changes, privacy requests: a landing file of the source was counted since the
        previous build (stg_landing_files; landing files are immutable, so their base models change only
        with a new file): every edge of the source is recomputed; else a record whose timestamp lies
        between the previous and current end of the as-of date (for consent changes, of the earlier of the
        as-of date and the data clock, which quarantines later changes as future_dated).
    Both ends only move forward as data arrives; when either moved back (var as_of), or every order version
    was rewritten (a full refresh of the order models), the build recomputes every edge.
-#}

{#-
    record_edges_build_state(): for a build of int_identity_record_edges, a dict: `incremental` (false: empty
    the table and write every edge), and when true the constants the key sets below need: `loaded_at` (the
    latest loaded_at it holds), `as_of_window` and `consent_window` (pairs of timestamp literals, the
    previous and current end), and `rewritten_sources` (the record sources with a file counted since).
    Looked up when dbt executes, before the pre-hook deletes anything, by the model and its pre-hook alike.
-#}
{% macro record_edges_build_state() -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return({'incremental': false}) }}
    {%- endif -%}
    {%- set previous = run_query(
        'select cast(max(loaded_at) as varchar), cast(max(built_as_of_date) as varchar), '
        ~ 'cast(max(built_latest_data_date) as varchar) from ' ~ this
    ).rows[0] -%}
    {%- if previous[0] is none -%}
        {{ return({'incremental': false}) }}
    {%- endif -%}
    {%- set loaded_at = "cast('" ~ previous[0] ~ "' as " ~ dbt.type_timestamp() ~ ")" -%}
    {%- set clock = run_query(
        'select cast(as_of_date as varchar), cast(latest_data_date as varchar) from ' ~ ref('stg_data_clock')
    ).rows[0] -%}
    {%- set check -%}
        select
            cast('{{ clock[0] }}' as date) < cast('{{ previous[1] }}' as date)
            or cast('{{ clock[1] }}' as date) < cast('{{ previous[2] }}' as date)
            or coalesce((select min(loaded_at) from {{ ref('stg_shop__order_versions') }}) > {{ loaded_at }}, false)
            as must_rebuild
    {%- endset -%}
    {%- if run_query(check).columns[0].values()[0] -%}
        {{ return({'incremental': false}) }}
    {%- endif -%}
    {%- set counted_since = run_query(
        'select distinct source_name from ' ~ ref('stg_landing_files') ~ ' where loaded_at > ' ~ loaded_at
    ).columns[0].values() -%}
    {%- set previous_end = as_of_end_at("cast('" ~ previous[1] ~ "' as date)") -%}
    {%- set current_end = as_of_end_at("cast('" ~ clock[0] ~ "' as date)") -%}
    {#- Consent changes count up to the earlier of the as-of end and the clock's end (latest_data_date + 1). -#}
    {%- set previous_consent_end = as_of_end_at("cast('" ~ [previous[1], previous[2]] | min ~ "' as date)") -%}
    {%- set current_consent_end = as_of_end_at("cast('" ~ [clock[0], clock[1]] | min ~ "' as date)") -%}
    {{ return({
        'incremental': true,
        'loaded_at': loaded_at,
        'as_of_window': (previous_end, current_end),
        'consent_window': (previous_consent_end, current_consent_end),
        'rewritten_sources': counted_since | list,
    }) }}
{%- endmacro %}

{#-
    recomputed_record_keys(build, key_set, column): for a build of int_identity_record_edges (build from
    record_edges_build_state), the condition that `column` is a key whose edges the build recomputes, or
    `1 = 1` when the build recomputes every edge of those kinds. key_set: 'shop_customer_ids' (order_email
    and shop_account edges), 'guest_emails' (guest_checkout), 'crm_customer_ids' (CRM edges),
    'consent_emails' or 'privacy_emails'.
-#}
{% macro recomputed_record_keys(build, key_set, column) -%}
    {%- if not build.incremental -%}
        {{ return('1 = 1') }}
    {%- endif -%}
    {%- if key_set in ('shop_customer_ids', 'guest_emails') -%}
        {#- Every version of an order stg_shop__order_versions rewrote carries the new loaded_at, and a
            version entering or leaving the as-of date has its own timestamp in the window, so the versions
            themselves give the keys, without looking up their orders' other versions. -#}
        {%- set key_column, key_filter = ('customer_id', 'customer_id is not null')
            if key_set == 'shop_customer_ids' else ('email', 'customer_id is null and email is not null') -%}
        {%- set keys -%}
            select {{ key_column }} from {{ ref('stg_shop__order_versions') }}
            where
                {{ key_filter }}
                and (
                    loaded_at > {{ build.loaded_at }}
                    or {{ timestamps_within(['created_at', 'valid_from_at', 'valid_to_at'], build.as_of_window) }}
                )
        {%- endset -%}
    {%- else -%}
        {%- set source_name, relation, key_column, timestamps, window = {
            'crm_customer_ids': ('crm_customers', ref('stg_crm__customer_versions'), 'customer_id',
                                 ['valid_from_at', 'valid_to_at'], build.as_of_window),
            'consent_emails': ('consent_events', ref('stg_consent__events'), 'email', ['event_at'],
                               build.consent_window),
            'privacy_emails': ('privacy_requests', ref('stg_privacy__requests'), 'email', ['requested_at'],
                               build.as_of_window),
        }[key_set] -%}
        {%- if source_name in build.rewritten_sources -%}
            {{ return('1 = 1') }}
        {%- endif -%}
        {%- set keys -%}
            select {{ key_column }} from {{ relation }} where {{ timestamps_within(timestamps, window) }}
        {%- endset -%}
    {%- endif -%}
    {{ return(column ~ ' in (' ~ keys ~ ')') }}
{%- endmacro %}

{#- timestamps_within(columns, window): whether any of the timestamp `columns` lies in [window[0], window[1]). -#}
{% macro timestamps_within(columns, window) -%}
    {%- set conditions = [] -%}
    {%- for column in columns -%}
        {%- do conditions.append('(' ~ column ~ ' >= ' ~ window[0] ~ ' and ' ~ column ~ ' < ' ~ window[1] ~ ')') -%}
    {%- endfor -%}
    ({{ conditions | join(' or ') }})
{%- endmacro %}

{#-
    delete_recomputed_record_edges(): pre-hook of int_identity_record_edges. On an incremental build,
    deletes the held edges that the build recomputes (record_edges_build_state), all of them when it
    rewrites every edge; the build then appends what it recomputed.
-#}
{% macro delete_recomputed_record_edges() -%}
    {%- if is_incremental() -%}
        {%- set build = record_edges_build_state() -%}
        delete from {{ this }}
        {%- if build.incremental %}
        where
            (matched_by in ('order_email', 'shop_account')
                and {{ recomputed_record_keys(build, 'shop_customer_ids', 'left_identifier') }})
            or (matched_by = 'guest_checkout'
                and {{ recomputed_record_keys(build, 'guest_emails', 'left_identifier') }})
            or (matched_by in ('crm_record_email', 'crm_record')
                and {{ recomputed_record_keys(build, 'crm_customer_ids', 'left_identifier') }})
            or (matched_by in ('consent_customer_id', 'consent_email')
                and {{ recomputed_record_keys(build, 'consent_emails', 'right_identifier') }})
            or (matched_by = 'privacy_request'
                and {{ recomputed_record_keys(build, 'privacy_emails', 'left_identifier') }})
        {%- endif %}
    {%- endif -%}
{%- endmacro %}
