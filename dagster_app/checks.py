"""Python asset checks on what dbt built. dbt's own tests become checks in `dagster_app.assets.dbt`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    asset_check,
)

from dagster_app.instance import DUCKDB_POOL
from dagster_app.project import dbt_manifest
from dagster_app.resources import DuckDBResource

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
