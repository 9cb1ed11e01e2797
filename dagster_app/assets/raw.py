"""The landing zone: one observable asset per raw source, keyed `raw/<folder>`.

The sources come from the dbt manifest (every source with `config.meta.landing_zone`), so declaring a source
in a `_<system>__sources.yml` adds its raw asset here. An observation reports the folder's file count, bytes
and a data version that changes with any added, removed or rewritten file: Dagster then shows the assets
built from older files as stale, and a sensor can compare versions to start a build.
"""

import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    AssetSpec,
    BetaWarning,
    DataVersion,
    MetadataValue,
    ObserveResult,
    multi_observable_source_asset,
)

from dagster_app.landing_zone import snapshot_folder
from dagster_app.project import dbt_manifest
from dagster_app.translator import PersonalizeDbtTranslator, landing_zone
from personalize.settings import load_settings

FOLDER_METADATA_KEY = "landing_zone_folder"


def landing_zone_sources(manifest: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The manifest's landing-zone sources, one per folder, in folder order."""
    by_folder: dict[str, Mapping[str, Any]] = {}
    for props in manifest.get("sources", {}).values():
        zone = landing_zone(props)
        if zone is not None:
            by_folder.setdefault(zone["folder"], props)
    return [by_folder[folder] for folder in sorted(by_folder)]


def raw_asset_specs(manifest: Mapping[str, Any], translator: PersonalizeDbtTranslator) -> list[AssetSpec]:
    specs = []
    for props in landing_zone_sources(manifest):
        zone = landing_zone(props) or {}
        required = bool(zone.get("required"))
        description = (props.get("description") or "").strip()
        specs.append(
            AssetSpec(
                key=translator.get_asset_key(props),
                group_name=translator.get_group_name(props),
                description=(
                    f"{description}\n\nFiles: `$PERSONALIZE_RAW_DIR/{zone['folder']}/*` (.csv, .csv.gz, "
                    f"or .parquet). {'Required.' if required else 'Optional: may be absent or empty.'}"
                ),
                kinds={"csv", "parquet"},
                owners=translator.get_owners(props),
                metadata={
                    FOLDER_METADATA_KEY: zone["folder"],
                    "required": required,
                    "dbt_source": f"{props['source_name']}.{props['name']}",
                },
            )
        )
    return specs


def _observe(spec: AssetSpec, raw_dir: Path) -> ObserveResult:
    snapshot = snapshot_folder(raw_dir / spec.metadata[FOLDER_METADATA_KEY])
    metadata: dict[str, Any] = {
        "file_count": MetadataValue.int(snapshot.file_count),
        "bytes": MetadataValue.int(snapshot.total_bytes),
        "path": MetadataValue.path(str(snapshot.folder)),
    }
    if snapshot.last_modified is not None:
        metadata["last_modified"] = MetadataValue.timestamp(snapshot.last_modified)
    return ObserveResult(
        asset_key=spec.key, data_version=DataVersion(snapshot.data_version), metadata=metadata
    )


def build_raw_assets(manifest: Mapping[str, Any], translator: PersonalizeDbtTranslator) -> AssetsDefinition:
    specs = raw_asset_specs(manifest, translator)

    # One observation step for all folders rather than one per folder; selecting one raw asset in the UI
    # observes just that one. The decorator is beta. The stable observable_source_asset would take a step per
    # folder and warns about deprecated internals, so the beta notice is silenced here, not on every load.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)

        @multi_observable_source_asset(specs=specs, name="observe_landing_zone", can_subset=True)
        def observe_landing_zone(context: AssetExecutionContext) -> Iterator[ObserveResult]:
            raw_dir = load_settings().raw_dir
            for spec in specs:
                if spec.key in context.selected_asset_keys:
                    yield _observe(spec, raw_dir)

    return observe_landing_zone


raw_landing_zone = build_raw_assets(dbt_manifest, PersonalizeDbtTranslator())
