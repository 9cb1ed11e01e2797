"""Offline quality of product_recommendations on the generator's horizon data.

Builds the warehouse up to product_recommendations (as of the dataset's as-of date) and scores the top 3
against what each person really bought in the following horizon (`_truth/future_order_details`, completed
orders only), next to baselines computed on the same warehouse:
- most popular: the 3 products with the most buyers, the same for everyone;
- most popular unbought: the 3 most-bought products the person has not bought (a stronger baseline);
- co-purchase similarity alone: the summed item-to-item cosine of the mart's candidates, without its
  category-affinity and popularity weighting (an ablation that shows what the weighting adds).
Target: hit-rate@3 at least 2x the most-popular baseline's.

Only products the person had not bought before the as-of date count as relevant (the mart never
recommends a product already bought); hit-rate@3 is the share of evaluated people with at least one such
purchase among their 3 recommendations, recall@3 the mean share of their such purchases that were recommended.

Dataset: BENCH_RECOMMENDATIONS_CUSTOMERS customers (default 100000, seed 1, cached under data/bench/), or an
existing generated landing zone with its `_truth/` in BENCH_RECOMMENDATIONS_RAW_DIR.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from bench.datasets import BENCH_DATA, ensure_dataset
from personalize.dbt import run_dbt
from personalize.settings import Settings

TITLE = "Product recommendations: offline quality"
DEFAULT_CUSTOMERS = 100_000
TOP_N = 3
TARGET_LIFT = 2.0

# Truth person -> warehouse person: the person most of the truth person's identifiers resolved to.
TRUTH_PERSONS_SQL = """
create temp table truth_persons as
with matches as (
    select truth.true_person_id, identity_map.person_id, count(*) as matched_identifiers
    from read_parquet('{truth}/identities.parquet') as truth
    inner join intermediate.int_identity_map as identity_map
        on identity_map.identifier_type = truth.identifier_type
        and identity_map.identifier = case
            when truth.identifier_type = 'email' then lower(trim(truth.identifier)) else truth.identifier
        end
    group by all
)
select true_person_id, arg_max(person_id, matched_identifiers) as person_id
from matches
group by true_person_id
"""

PURCHASED_SQL = """
create temp table purchased as
select distinct coalesce(accounts.person_id, emails.person_id) as person_id, lines.product_id
from staging.stg_shop__orders as orders
inner join staging.stg_shop__order_lines as lines on orders.order_id = lines.order_id
inner join staging.stg_shop__products as products on lines.product_id = products.product_id
left join intermediate.int_identity_map as accounts
    on accounts.identifier_type = 'shop_customer_id' and accounts.identifier = orders.customer_id
left join intermediate.int_identity_map as emails
    on emails.identifier_type = 'email' and emails.identifier = orders.email
where orders.is_completed and orders.created_at < (select as_of_date + 1 from staging.stg_data_clock)
"""

# Relevant: products bought in a completed future order that the person had not bought before.
RELEVANT_SQL = """
create temp table relevant as
select distinct truth_persons.person_id, future.product_id
from (
    select true_person_id, unnest(string_split(product_ids, '|')) as product_id
    from read_parquet('{truth}/future_order_details.parquet')
    where status = 'completed'
) as future
inner join truth_persons on future.true_person_id = truth_persons.true_person_id
anti join purchased
    on purchased.person_id = truth_persons.person_id and purchased.product_id = future.product_id
"""

POPULARITY_SQL = """
create temp table popularity as
select purchased.product_id, count(*) as buyers
from purchased
inner join staging.stg_shop__products as products on purchased.product_id = products.product_id
where products.is_active
group by purchased.product_id
"""

BASELINES = {
    "most popular (baseline)": f"""
        select evaluated.person_id, top.product_id
        from (select distinct person_id from relevant) as evaluated
        cross join (select product_id from popularity order by buyers desc, product_id limit {TOP_N}) as top
    """,
    "most popular unbought (stronger baseline)": f"""
        select person_id, product_id from (
            select evaluated.person_id, top.product_id,
                row_number() over (
                    partition by evaluated.person_id order by top.buyers desc, top.product_id
                ) as rank
            from (select distinct person_id from relevant) as evaluated
            cross join (select * from popularity order by buyers desc, product_id limit 100) as top
            anti join purchased
                on purchased.person_id = evaluated.person_id and purchased.product_id = top.product_id
        )
        where rank <= {TOP_N}
    """,
    "co-purchase similarity alone (ablation)": f"""
        with buyers as (select product_id, count(*) as n from purchased group by product_id),
        pairs as (
            select a.product_id, b.product_id as neighbour, count(*) as co_buyers
            from purchased as a
            inner join purchased as b on a.person_id = b.person_id and a.product_id <> b.product_id
            group by all
            having count(*) >= 2
        ),
        neighbours as (
            select pairs.product_id, pairs.neighbour,
                pairs.co_buyers / sqrt(1.0 * a.n * b.n) as similarity
            from pairs
            inner join buyers as a on pairs.product_id = a.product_id
            inner join buyers as b on pairs.neighbour = b.product_id
            inner join popularity on pairs.neighbour = popularity.product_id
            qualify row_number() over (
                partition by pairs.product_id order by similarity desc, pairs.neighbour
            ) <= 20
        ),
        scores as (
            select purchased.person_id, neighbours.neighbour as product_id, sum(similarity) as score
            from purchased
            inner join neighbours on purchased.product_id = neighbours.product_id
            where purchased.person_id in (select person_id from relevant)
            group by all
        )
        select person_id, product_id from scores
        anti join purchased using (person_id, product_id)
        qualify row_number() over (partition by person_id order by score desc, product_id) <= {TOP_N}
    """,
}


def _metrics(connection: duckdb.DuckDBPyConnection, recommendations_sql: str) -> tuple[int, float, float]:
    """(people evaluated, hit-rate@N, recall@N) of the recommendations over everyone with relevant items."""
    ((people, hit_rate, recall),) = connection.sql(
        f"""
        with recommendations as ({recommendations_sql}),
        per_person as (
            select
                relevant.person_id,
                count(*) as relevant_items,
                count(recommendations.product_id) as hits
            from relevant
            left join recommendations
                on relevant.person_id = recommendations.person_id
                and relevant.product_id = recommendations.product_id
            group by relevant.person_id
        )
        select count(*), avg(case when hits > 0 then 1.0 else 0.0 end), avg(1.0 * hits / relevant_items)
        from per_person
        """
    ).fetchall()
    return people, hit_rate, recall


def evaluate(connection: duckdb.DuckDBPyConnection, truth: Path) -> dict[str, tuple[int, float, float]]:
    """Metrics of the mart and of each baseline, by name, on a warehouse with product_recommendations."""
    for statement in (TRUTH_PERSONS_SQL, PURCHASED_SQL, RELEVANT_SQL, POPULARITY_SQL):
        connection.execute(statement.format(truth=truth))
    mart = f"""
        select person_id, product_id from marts.product_recommendations
        where recommendation_rank <= {TOP_N}
    """
    results = {"product_recommendations (the mart)": _metrics(connection, mart)}
    return results | {name: _metrics(connection, sql) for name, sql in BASELINES.items()}


def _dataset() -> tuple[Path, str]:
    raw_dir = os.environ.get("BENCH_RECOMMENDATIONS_RAW_DIR")
    if raw_dir:
        return Path(raw_dir), f"the landing zone {raw_dir}"
    customers = int(os.environ.get("BENCH_RECOMMENDATIONS_CUSTOMERS", DEFAULT_CUSTOMERS))
    return ensure_dataset(customers), f"the generator's {customers:,}-customer dataset (seed 1)"


def run() -> str:
    raw_dir, described = _dataset()
    truth = raw_dir / "_truth"
    if not (truth / "future_order_details.parquet").exists():
        raise FileNotFoundError(
            f"{truth}/future_order_details.parquet is missing: generate the dataset with --horizon-days"
        )
    warehouse = BENCH_DATA / "recommendations.duckdb"
    warehouse.unlink(missing_ok=True)
    print(f"building product_recommendations on {described}", flush=True)
    # build, not run: seeds are part of it; data tests are left to the test suite.
    build = ["build", "--select", "+product_recommendations", "--exclude-resource-type", "test", "unit_test"]
    run_dbt(build, Settings(raw_dir=raw_dir, duckdb_path=warehouse))

    with duckdb.connect(str(warehouse)) as connection:
        results = evaluate(connection, truth)
        methods = connection.sql(
            "select method, count(distinct person_id) from marts.product_recommendations "
            "where recommendation_rank = 1 group by method order by 2 desc"
        ).fetchall()
        (as_of,) = connection.sql("select as_of_date from staging.stg_data_clock").fetchall()[0]
        warehouse_persons = connection.sql("select count(*) from marts.persons").fetchall()[0][0]
    warehouse.unlink(missing_ok=True)

    baseline_hit_rate = results["most popular (baseline)"][1]
    lines = [
        f"| recommender | people evaluated | hit-rate@{TOP_N} | recall@{TOP_N} | vs most popular |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, (people, hit_rate, recall) in results.items():
        lift = hit_rate / baseline_hit_rate if baseline_hit_rate else float("nan")
        lines.append(f"| {name} | {people:,} | {hit_rate:.3f} | {recall:.3f} | {lift:.2f}x |")
    mart_lift = results["product_recommendations (the mart)"][1] / baseline_hit_rate
    verdict = "met" if mart_lift >= TARGET_LIFT else "NOT met"
    method_counts = ", ".join(f"{method} {count:,}" for method, count in methods)
    return (
        f"`dbt build --select +product_recommendations` (models and seeds) on {described}, as of {as_of}; "
        "scored against the "
        "completed orders of the following horizon (`_truth/future_order_details`). Relevant items are "
        "products the person had not bought before the as-of date; people without any are not evaluated. "
        "Truth persons are mapped to warehouse persons through their identifiers.\n\n"
        + "\n".join(lines)
        + f"\n\nTarget (hit-rate@{TOP_N} >= {TARGET_LIFT:.0f}x the most-popular baseline): **{verdict}** "
        f"({mart_lift:.2f}x). Method of each person's first recommendation, over all {warehouse_persons:,} "
        f"persons: {method_counts}.\n"
    )
