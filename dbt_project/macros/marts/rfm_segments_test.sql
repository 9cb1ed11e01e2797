{#-
    Generic test rfm_segments_cover_all_combinations: the RFM segment map (seed rfm_segments) has exactly
    one row for each of the 125 (r_score, f_score, m_score) combinations of scores 1-5: no combination
    missing, none repeated, no score outside 1-5. Returns the offending combinations (or the wrong count),
    so zero rows means the map is complete.
-#}
{% test rfm_segments_cover_all_combinations(model, r_column='r_score', f_column='f_score', m_column='m_score') %}

with scores as (

    select 1 as score union all select 2 union all select 3 union all select 4 union all select 5

),

expected_combinations as (

    select
        r_scores.score as r_score,
        f_scores.score as f_score,
        m_scores.score as m_score
    from scores as r_scores
    cross join scores as f_scores
    cross join scores as m_scores

),

mapped_combinations as (

    select
        cast({{ r_column }} as {{ dbt.type_int() }}) as r_score,
        cast({{ f_column }} as {{ dbt.type_int() }}) as f_score,
        cast({{ m_column }} as {{ dbt.type_int() }}) as m_score,
        count(*) as row_count
    from {{ model }}
    group by 1, 2, 3

),

missing_or_repeated as (

    select
        coalesce(expected_combinations.r_score, mapped_combinations.r_score) as r_score,
        coalesce(expected_combinations.f_score, mapped_combinations.f_score) as f_score,
        coalesce(expected_combinations.m_score, mapped_combinations.m_score) as m_score,
        case
            when mapped_combinations.r_score is null then 'missing'
            when expected_combinations.r_score is null then 'not_a_valid_combination'
            else 'repeated'
        end as problem
    from expected_combinations
    full outer join mapped_combinations
        on expected_combinations.r_score = mapped_combinations.r_score
        and expected_combinations.f_score = mapped_combinations.f_score
        and expected_combinations.m_score = mapped_combinations.m_score
    where mapped_combinations.r_score is null
        or expected_combinations.r_score is null
        or mapped_combinations.row_count <> 1

),

row_count_check as (

    select
        cast(null as {{ dbt.type_int() }}) as r_score,
        cast(null as {{ dbt.type_int() }}) as f_score,
        cast(null as {{ dbt.type_int() }}) as m_score,
        'expected 125 rows, found ' || cast(count(*) as {{ dbt.type_string() }}) as problem
    from {{ model }}
    having count(*) <> 125

)

select * from missing_or_repeated
union all
select * from row_count_check

{% endtest %}
