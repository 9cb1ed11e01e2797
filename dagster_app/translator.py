"""How dbt resources become Dagster assets: keys, groups, owners and descriptions, all decided here.

- Models, seeds and snapshots keep dagster-dbt's default key `<schema>/<name>`, where the schema comes from
  dbt_project.yml (e.g. `marts/customer_360`), so an asset key reads like its warehouse relation.
- The group is the folder under `models/`: staging, intermediate, marts, ml, activation, quality. A folder
  added later becomes a group of its own with no code change. Intermediate is a group of its own rather than
  part of staging: the identity graph lives there, and people look for it by name. Seeds are `seeds`.
- Landing-zone sources (`config.meta.landing_zone`) map to the raw assets `raw/<folder>` that
  `dagster_app.assets.raw` observes. A source with `config.meta.dagster.asset_key` maps to that key: this is
  how tables written by Python assets (e.g. `ml/churn_scores`) feed dbt models.
- `config.meta.dagster.group` and `.owners` on a node override the group and the owners.
- Automation (see `get_automation_condition`): models of the layers after staging follow their upstream
  assets declaratively; staging is driven by the raw-files sensor, the schedules and people.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from dagster import AssetKey, AssetSelection, AutomationCondition
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings

RAW_GROUP = "raw"
SEEDS_GROUP = "seeds"
SNAPSHOTS_GROUP = "snapshots"
# A model directly in models/ (there is none today) has no layer folder to name its group after.
UNGROUPED_MODELS_GROUP = "dbt"
DBT_OWNERS = ("team:analytics-engineering",)
# dbt tag (set per folder in dbt_project.yml) of the models the 15-minute refresh rebuilds: the incremental
# event models, the data clock they are checked against, and the cheap personalization and activation models.
FREQUENT_REFRESH_TAG = "frequent_refresh"
# Layers built only from the landing zone and seeds: the raw-files sensor and the jobs build them.
SOURCE_LAYER_GROUPS = frozenset({"staging", RAW_GROUP, SEEDS_GROUP, SNAPSHOTS_GROUP})


def frequent_refresh_assets() -> AssetSelection:
    """Assets whose dbt node has FREQUENT_REFRESH_TAG (dagster-dbt makes a dbt tag a key-only tag)."""
    return AssetSelection.tag(FREQUENT_REFRESH_TAG, "")


def resource_meta(dbt_resource_props: Mapping[str, Any]) -> Mapping[str, Any]:
    """A node's meta: dbt 1.10+ keeps it in config.meta, older manifests only at the top level."""
    return (dbt_resource_props.get("config") or {}).get("meta") or dbt_resource_props.get("meta") or {}


def landing_zone(dbt_resource_props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The `landing_zone` meta ({folder, required}) of a source fed by raw files, else None."""
    if dbt_resource_props.get("resource_type") != "source":
        return None
    zone = resource_meta(dbt_resource_props).get("landing_zone")
    return zone if isinstance(zone, Mapping) and zone.get("folder") else None


def raw_asset_key(folder: str) -> AssetKey:
    return AssetKey([RAW_GROUP, folder])


def _group_name(text: str) -> str:
    # Dagster group names allow only letters, digits and underscores; folder names are freer.
    return re.sub(r"\W", "_", text)


class PersonalizeDbtTranslator(DagsterDbtTranslator):
    def __init__(self) -> None:
        # Code references link each asset to its SQL file in the UI.
        super().__init__(DagsterDbtTranslatorSettings(enable_code_references=True))

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        dagster_meta = resource_meta(dbt_resource_props).get("dagster") or {}
        zone = landing_zone(dbt_resource_props)
        if zone is not None and not dagster_meta.get("asset_key"):
            return raw_asset_key(zone["folder"])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        configured = super().get_group_name(dbt_resource_props)
        if configured:
            return configured
        resource_type = dbt_resource_props.get("resource_type")
        if resource_type == "seed":
            return SEEDS_GROUP
        if resource_type == "snapshot":
            return SNAPSHOTS_GROUP
        if resource_type == "source":
            return RAW_GROUP if landing_zone(dbt_resource_props) else None
        # fqn is [project, folder, ..., name], relative to the model path: its first folder is the layer.
        fqn = dbt_resource_props.get("fqn") or []
        return _group_name(fqn[1]) if len(fqn) > 2 else UNGROUPED_MODELS_GROUP

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> Sequence[str] | None:
        return super().get_owners(dbt_resource_props) or list(DBT_OWNERS)

    def get_description(self, dbt_resource_props: Mapping[str, Any]) -> str:
        description = (dbt_resource_props.get("description") or "").strip()
        if not description:
            # An undocumented node still says what it is; its YAML is the place to describe it.
            kind = dbt_resource_props["resource_type"]
            materialized = (dbt_resource_props.get("config") or {}).get("materialized")
            description = f"dbt {kind} `{dbt_resource_props['name']}`"
            if materialized and materialized != kind:
                description += f", materialized as a {materialized}"
        sql = (dbt_resource_props.get("raw_code") or "").strip()
        return f"{description}\n\n```sql\n{sql}\n```" if sql else description

    def get_automation_condition(self, dbt_resource_props: Mapping[str, Any]) -> AutomationCondition | None:
        """Eager for every model after staging: it is rebuilt once its upstream assets were updated.

        That is what carries a change made anywhere upstream (new scores from a retrain, a staging model
        rebuilt from the UI) down to the audience without a job listing every asset. Two exceptions:
        - Updates of the frequent-refresh models (web and ESP events every 15 minutes) do not trigger the
          other, heavier models: customer_360 follows them at the next full build, not 96 times a day. The
          models tagged for the frequent refresh themselves still react to everything, scores included.
        - Staging, seeds and snapshots get no condition: they change only when the landing zone does, which
          the raw-files sensor watches, or when someone asks.
        """
        if dbt_resource_props.get("resource_type") != "model":
            return None
        if self.get_group_name(dbt_resource_props) in SOURCE_LAYER_GROUPS:
            return None
        if FREQUENT_REFRESH_TAG in (dbt_resource_props.get("tags") or []):
            return AutomationCondition.eager()
        return AutomationCondition.eager().ignore(frequent_refresh_assets())
