"""The model layer as assets: train churn and LTV (with evaluation against the baselines and the promotion
rule), then score everyone with the active model and write `ml.churn_scores` / `ml.ltv_scores`.

The work is done by the plain `ml` library; these assets only open the warehouse, call it and describe the
result. The score assets' keys are the `asset_key` of the dbt sources `ml_scores.*`, which is what puts the
activation models downstream of them.

DuckDB admits one writer: each step opens the warehouse for as short a span as it can (training reads the
training sets, closes, then trains) and claims the `duckdb` pool, so no dbt run overlaps it.
"""

import base64
from collections.abc import Iterator, Mapping

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    AutomationCondition,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from dagster_app.instance import DUCKDB_POOL
from dagster_app.resources import DuckDBResource
from ml.pipeline import Candidate, iter_candidates, load_training_sets, score_active
from ml.promotion import PROMOTION_METRICS, REPORTED_METRICS
from ml.scoring import SCORE_TABLES
from ml.training import CHURN, KINDS, LTV, Kind
from personalize.settings import load_settings

ML_GROUP = "ml"
ML_OWNERS = ["team:data-science"]
TRAINING_EXAMPLES = AssetKey(["ml", "ml_training_examples"])
SCORING_FEATURES = AssetKey(["ml", "ml_scoring_features"])
SEASONAL_EXPOSURE = AssetKey(["ml", "ml_seasonal_exposure"])
SEASONAL_CLOCK = AssetKey(["ml", "ml_seasonal_clock"])
MODEL_KEYS: dict[Kind, AssetKey] = {
    CHURN: AssetKey(["ml", "churn_model"]),
    LTV: AssetKey(["ml", "ltv_model"]),
}
# The keys the dbt sources ml_scores.churn_scores / ml_scores.ltv_scores name in meta.dagster.asset_key.
SCORE_KEYS: dict[Kind, AssetKey] = {
    CHURN: AssetKey(["ml", "churn_scores"]),
    LTV: AssetKey(["ml", "ltv_scores"]),
}
MODEL_DESCRIPTIONS: dict[Kind, str] = {
    CHURN: "XGBoost churn classifier: P(no purchase within the horizon).",
    LTV: "XGBoost (Tweedie) LTV regressor: net spend within the horizon.",
}


def _cell(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def metrics_markdown(kind: Kind, metrics: Mapping[str, Mapping[str, object]]) -> str:
    """The model and every baseline on the validation window, one row each (the model first)."""
    columns = REPORTED_METRICS[kind]
    lines = [
        "| scorer | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for scorer, values in metrics.items():
        lines.append(f"| {scorer} | " + " | ".join(_cell(values.get(name)) for name in columns) + " |")
    return "\n".join(lines)


def plots_markdown(charts: Mapping[str, bytes]) -> str:
    """PNG charts embedded as data URIs: the UI renders them with no file server behind it."""
    return "\n\n".join(
        f"**{name}**\n\n![{name}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
        for name, png in charts.items()
    )


def _model_result(candidate: Candidate) -> MaterializeResult:
    metadata = candidate.metadata
    kind = metadata.kind
    primary = PROMOTION_METRICS[kind][0]
    return MaterializeResult(
        asset_key=MODEL_KEYS[kind],
        metadata={
            "version": metadata.version,
            "promoted": metadata.promoted,
            "promotion_reason": MetadataValue.text(metadata.reason),
            "best_baseline": metadata.best_baseline,
            f"model_{primary}": float(metadata.metrics["xgboost"][primary]),
            "validation_cutoff": metadata.validation_cutoff,
            "validation_rows": candidate.evaluation.rows,
            "training_rows": metadata.training_rows,
            "rounds": metadata.rounds,
            "short_window": MetadataValue.text(metadata.short_window_decision),
            "metrics": MetadataValue.md(metrics_markdown(kind, metadata.metrics)),
            "plots": MetadataValue.md(plots_markdown(candidate.plots())),
        },
    )


@multi_asset(
    name="ml_models",
    specs=[
        AssetSpec(
            MODEL_KEYS[kind],
            # The scoring features too: whether the short window is trained depends on who is scored.
            deps=[TRAINING_EXAMPLES, SCORING_FEATURES, SEASONAL_EXPOSURE, SEASONAL_CLOCK],
            group_name=ML_GROUP,
            owners=ML_OWNERS,
            kinds={"python", "xgboost"},
            description=(
                f"{MODEL_DESCRIPTIONS[kind]} Trained on ml.ml_training_examples, evaluated out of time "
                "against the BTYD and heuristic baselines, promoted only if it beats every one of them "
                "(ml/README.md). Metadata: metrics vs baselines, promotion decision, ROC/lift/decile plots."
            ),
            automation_condition=AutomationCondition.eager(),
            skippable=True,
        )
        for kind in KINDS
    ],
    can_subset=True,
    pool=DUCKDB_POOL,
)
def ml_models(context: AssetExecutionContext, duckdb: DuckDBResource) -> Iterator[MaterializeResult]:
    kinds = [kind for kind in KINDS if MODEL_KEYS[kind] in context.selected_asset_keys]
    with duckdb.get_connection(read_only=True) as connection:
        sets = load_training_sets(connection, context.log.info)
    # Training takes the longest; the warehouse is closed by then, so nothing else waits on this step's lock.
    for candidate in iter_candidates(sets, load_settings().model_dir, kinds=kinds, progress=context.log.info):
        yield _model_result(candidate)


@multi_asset(
    name="ml_scores",
    specs=[
        AssetSpec(
            SCORE_KEYS[kind],
            deps=[MODEL_KEYS[kind], SCORING_FEATURES],
            group_name=ML_GROUP,
            owners=ML_OWNERS,
            kinds={"python", "duckdb"},
            description=(
                f"`{SCORE_TABLES[kind]}`: one {kind} score per person in ml.ml_scoring_features, from the "
                "active model (or the best baseline while no model was promoted), with its top-3 reasons."
            ),
            automation_condition=AutomationCondition.eager(),
            skippable=True,
        )
        for kind in KINDS
    ],
    can_subset=True,
    pool=DUCKDB_POOL,
)
def ml_scores(context: AssetExecutionContext, duckdb: DuckDBResource) -> Iterator[MaterializeResult]:
    kinds = tuple(kind for kind in KINDS if SCORE_KEYS[kind] in context.selected_asset_keys)
    with duckdb.get_connection() as connection:
        results = score_active(connection, load_settings().model_dir, kinds=kinds, progress=context.log.info)
    for kind, scores in results.items():
        yield MaterializeResult(
            asset_key=SCORE_KEYS[kind],
            metadata={
                "dagster/row_count": len(scores.frame),
                "model_version": scores.model_version,
                "is_baseline": scores.is_baseline,
                "reasons_method": scores.reasons_method,
                "scored_at": MetadataValue.text(
                    str(scores.frame["scored_at"].iloc[0]) if len(scores.frame) else "-"
                ),
                "table": SCORE_TABLES[kind],
            },
        )
