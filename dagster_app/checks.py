"""Python asset checks on what dbt built. dbt's own tests become checks in `dagster_app.assets.dbt`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    asset_check,
)

from dagster_app.assets.ml import MODEL_KEYS, SCORE_KEYS, metrics_markdown
from dagster_app.instance import DUCKDB_POOL
from dagster_app.project import dbt_manifest
from dagster_app.resources import DuckDBResource
from ml import registry
from ml.promotion import PROMOTION_METRICS
from ml.scoring import SCORE_TABLES
from ml.training import KINDS, Kind
from personalize.settings import load_settings

RECONCILIATION_MODEL = "quality_source_reconciliation"
RECONCILIATION_COLUMNS = (
    "source_name",
    "raw_rows",
    "clean_rows",
    "quarantined_rows",
    "superseded_rows",
    "difference",
)


def model_node(manifest: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    return manifest["nodes"][f"model.{manifest['metadata']['project_name']}.{name}"]


def relation(node: Mapping[str, Any]) -> str:
    # schema.alias without the database: dbt-duckdb names the database after the file, which differs
    # between the warehouse the manifest was parsed for and the one a run writes.
    return f"{node['schema']}.{node['alias'] or node['name']}"


_reconciliation = model_node(dbt_manifest, RECONCILIATION_MODEL)


@asset_check(
    asset=AssetKey([_reconciliation["config"]["schema"], RECONCILIATION_MODEL]),
    name="every_raw_row_accounted_for",
    description=(
        "For every landing-zone source, raw rows = clean + quarantined + superseded (difference 0). Shows "
        "the counts per source, so a failure says which source lost or duplicated rows."
    ),
    blocking=True,
    pool=DUCKDB_POOL,
)
def every_raw_row_accounted_for(duckdb: DuckDBResource) -> AssetCheckResult:
    columns = ", ".join(RECONCILIATION_COLUMNS)
    with duckdb.get_connection(read_only=True) as connection:
        rows = connection.sql(
            f"select {columns} from {relation(_reconciliation)} order by source_name"
        ).fetchall()
    unbalanced = [row[0] for row in rows if row[-1] != 0]
    records = [TableRecord(dict(zip(RECONCILIATION_COLUMNS, row, strict=True))) for row in rows]
    schema = TableSchema(
        columns=[
            TableColumn(name, "string" if name == "source_name" else "int") for name in RECONCILIATION_COLUMNS
        ]
    )
    return AssetCheckResult(
        passed=bool(rows) and not unbalanced,
        severity=AssetCheckSeverity.ERROR,
        description=(
            f"Unbalanced sources: {', '.join(unbalanced)}"
            if unbalanced
            else "No sources reconciled"
            if not rows
            else f"All {len(rows)} sources balance."
        ),
        metadata={
            "sources": len(rows),
            "unbalanced_sources": MetadataValue.text(", ".join(unbalanced) or "none"),
            "reconciliation": MetadataValue.table(records, schema=schema),
        },
    )


# The model layer.

# Scores are written by every full build (daily) and by the refresh of the models they depend on; older than
# this they describe customers as they were more than a day ago.
SCORES_MAX_AGE = timedelta(hours=26)


def model_quality(kind: Kind) -> AssetCheckResult:
    """Whether what scores `kind` now beats the baselines it was compared with, from the model registry."""
    model_dir = load_settings().model_dir
    active = registry.active_version(model_dir, kind)
    latest = registry.latest(model_dir, kind)
    if active is None:
        if latest is None:
            return AssetCheckResult(
                passed=False,
                severity=AssetCheckSeverity.WARN,
                description=f"No {kind} model in {model_dir}: nothing can score.",
            )
        # The library's guarantee: scores still exist, from the best baseline. That is working as designed,
        # so the check passes (Dagster shows it green; the severity is ignored) and says who scores.
        return AssetCheckResult(
            passed=True,
            severity=AssetCheckSeverity.WARN,
            description=(
                f"No {kind} model was ever promoted: the baseline {latest.best_baseline} is scoring. "
                f"Latest candidate {latest.version}: {latest.reason}"
            ),
            metadata={"scorer": f"baseline:{latest.best_baseline}", "latest_candidate": latest.version},
        )
    metadata = registry.load_metadata(model_dir, kind, active)
    model_metrics = metadata.metrics.get("xgboost", {})
    # Ties count for the model here: the promotion rule (strictly better, except at the lift ceiling) is
    # what let it in; this check catches an active model that does not hold up against its baselines.
    losses = [
        f"{name} {float(model_metrics.get(name, float('nan'))):.4f} < {baseline} {float(values[name]):.4f}"
        for name in PROMOTION_METRICS[kind]
        for baseline, values in metadata.metrics.items()
        if baseline != "xgboost"
        and not float(model_metrics.get(name, float("nan"))) >= float(values.get(name, float("nan")))
    ]
    passed = metadata.promoted and not losses
    if passed:
        description = (
            f"Active {kind} model {active} beats every baseline on {', '.join(PROMOTION_METRICS[kind])}."
        )
    elif not metadata.promoted:
        description = f"Active {kind} model {active} was never promoted: {metadata.reason}"
    else:
        description = f"Active {kind} model {active} does not beat its baselines: {'; '.join(losses)}"
    return AssetCheckResult(
        passed=passed,
        severity=AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "scorer": active,
            "latest_candidate": latest.version if latest else "-",
            "metrics": MetadataValue.md(metrics_markdown(kind, metadata.metrics)),
        },
    )


def _model_quality_check(kind: Kind) -> AssetChecksDefinition:
    @asset_check(
        asset=MODEL_KEYS[kind],
        name="beats_baselines",
        description=(
            f"The {kind} model that scores now beats every baseline on "
            f"{' and '.join(PROMOTION_METRICS[kind])} (validation window, from the registry). Passes with a "
            "warning that says so when no model was ever promoted and the best baseline is scoring."
        ),
    )
    def _check() -> AssetCheckResult:
        return model_quality(kind)

    return _check


def score_freshness(kind: Kind, duckdb: DuckDBResource, now: datetime | None = None) -> AssetCheckResult:
    """Scores were written recently, for exactly the people in ml_scoring_features."""
    now = (now or datetime.now(UTC)).replace(tzinfo=None)  # scored_at is a naive UTC timestamp
    table = SCORE_TABLES[kind]
    features = relation(model_node(dbt_manifest, "ml_scoring_features"))
    with duckdb.get_connection(read_only=True) as connection:
        [(scored, oldest, people, versions)] = connection.sql(
            f"select count(*), min(scored_at), count(distinct person_id), count(distinct model_version) "
            f"from {table}"
        ).fetchall()
        [(expected,)] = connection.sql(f"select count(*) from {features}").fetchall()
    problems = []
    if scored != expected:
        problems.append(f"{scored:,} rows in {table} but {expected:,} people in {features}")
    if people != scored:
        problems.append(f"{scored - people:,} duplicate person_id rows")
    if oldest is None or now - oldest > SCORES_MAX_AGE:
        problems.append(
            f"oldest scored_at {oldest} is more than {SCORES_MAX_AGE} before {now:%Y-%m-%d %H:%M} UTC"
        )
    if versions > 1:
        problems.append(f"{versions} model versions in one score table")
    return AssetCheckResult(
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        description="; ".join(problems) or f"{scored:,} people scored, oldest at {oldest} UTC.",
        metadata={
            "rows": scored,
            "expected_rows": expected,
            "oldest_scored_at": MetadataValue.text(str(oldest)),
        },
    )


def _score_freshness_check(kind: Kind) -> AssetChecksDefinition:
    @asset_check(
        asset=SCORE_KEYS[kind],
        name="scores_fresh_and_complete",
        description=(
            f"{SCORE_TABLES[kind]} holds one score per person in ml.ml_scoring_features, from one model "
            f"version, written within the last {SCORES_MAX_AGE}. Blocks activation when it fails."
        ),
        blocking=True,
        pool=DUCKDB_POOL,
    )
    def _check(duckdb: DuckDBResource) -> AssetCheckResult:
        return score_freshness(kind, duckdb)

    return _check


model_checks = [_model_quality_check(kind) for kind in KINDS] + [
    _score_freshness_check(kind) for kind in KINDS
]
