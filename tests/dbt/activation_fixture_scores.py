"""TEST FIXTURE ONLY: rule-based stand-ins for the Python scorer's ml.churn_scores and ml.ltv_scores.

The activation models read the score tables as dbt sources. Until the activation tests switch to the real
scorer, these tables are written here from a deterministic rule over marts.customer_rfm, with the scorer's
columns and its grain (one row per person with at least one order). The LTV score is rounded to whole
currency units on purpose, so many people tie and the tier cut points must break ties deterministically.
"""

from __future__ import annotations

import duckdb

FIXTURE_MODEL_VERSION = "fixture-rule-v1"


def write_rule_based_scores(connection: duckdb.DuckDBPyConnection) -> None:
    connection.execute("create schema if not exists ml")
    # churn: the longer since the last purchase and the fewer orders, the likelier no purchase ahead.
    connection.execute(
        f"""
        create or replace table ml.churn_scores as
        select
            person_id,
            least(1.0, recency_days / 365.0) * (1.0 / (1 + 0.2 * (frequency - 1))) as score,
            '{FIXTURE_MODEL_VERSION}' as model_version,
            timestamp '2026-01-01 00:00:00' as scored_at,
            '[]' as reasons
        from marts.customer_rfm
        """
    )
    # LTV: net revenue per order times recent activity, rounded so that ties are common.
    connection.execute(
        f"""
        create or replace table ml.ltv_scores as
        select
            person_id,
            round(cast(monetary as double) / frequency * (frequency - 1 + r_score) / 5.0, 0) as score,
            '{FIXTURE_MODEL_VERSION}' as model_version,
            timestamp '2026-01-01 00:00:00' as scored_at,
            '[]' as reasons
        from marts.customer_rfm
        """
    )
