"""Sensors: new raw files start a build of what they feed; declarative automation runs the rest.

Both start switched off, like the schedules: a fresh checkout should not begin writing to a warehouse.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from dagster import (
    AssetKey,
    AssetSelection,
    AutomationConditionSensorDefinition,
    DagsterInstance,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from dagster_app.assets.raw import FOLDER_METADATA_KEY, raw_landing_zone
from dagster_app.jobs import full_build
from dagster_app.landing_zone import snapshot_folder
from personalize.settings import load_settings

RAW_FILES_SENSOR_NAME = "raw_files_sensor"
TRIGGER_TAG = "personalize/trigger"
CHANGED_SOURCES_TAG = "personalize/changed_sources"
# Listing eight folders is cheap; a minute bounds how late a delivery is noticed.
RAW_FILES_INTERVAL_SECONDS = 60
# The cursor's entry for folders whose change was seen once and has not been built yet. A change is built
# only when the next tick sees the folder unchanged: a build started on a half-written file would load part
# of it, and the incremental models remember a file by name, so the rest would never be read. Comparing
# versions (names, sizes, modification times) needs no clock, so a file server's clock skew cannot fool
# it. Deliveries that pause longer than a tick should be written under a name dbt skips (a hidden `.name`
# or a `.part` suffix) and renamed when complete.
SETTLING_KEY = "_settling"


def latest_observed_version(instance: DagsterInstance, key: AssetKey) -> str | None:
    """The data version of the last observation of a raw asset, e.g. by the last full build."""
    records = instance.fetch_observations(key, limit=1).records
    if not records or records[0].asset_observation is None:
        return None
    return records[0].asset_observation.tags.get("dagster/data_version")


@dataclass(frozen=True)
class LandingChanges:
    changed: dict[AssetKey, str]  # raw assets to build, with their folder's version now
    seen: dict[str, str]  # folder -> version, for the cursor
    settling: dict[str, str]  # folder -> version of a change seen for the first time (SETTLING_KEY)


def changed_landing_folders(
    instance: DagsterInstance, known_versions: Mapping[str, str], settling: Mapping[str, str]
) -> LandingChanges:
    """Raw assets whose folder differs from what was last seen, and the versions seen now, per folder.

    "Last seen" is the sensor's own cursor or the last observation recorded in the instance: a sensor
    switched on after a full build does not rebuild files that build already read, also when its cursor is
    from before that build (Dagster keeps a stopped sensor's cursor). A folder never seen and still empty is
    no news (sources may be absent). A change counts once a tick finds the folder as the previous tick left
    it (`settling`, from the cursor); until then it is settling, and its cursor entry stays as it was.
    """
    raw_dir = load_settings().raw_dir
    result = LandingChanges({}, {}, {})
    for spec in raw_landing_zone.specs:
        folder = spec.metadata[FOLDER_METADATA_KEY]
        snapshot = snapshot_folder(raw_dir / folder)
        version = snapshot.data_version
        cursor_version = known_versions.get(folder)
        if version == cursor_version:
            result.seen[folder] = version
            continue
        observed = latest_observed_version(instance, spec.key)
        if cursor_version is None and observed is None and snapshot.file_count == 0:
            continue
        if version == observed:
            result.seen[folder] = version
            continue
        if settling.get(folder) != version:
            result.settling[folder] = version
            continue
        result.seen[folder] = version
        result.changed[spec.key] = version
    return result


@sensor(
    name=RAW_FILES_SENSOR_NAME,
    job=full_build,
    minimum_interval_seconds=RAW_FILES_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.STOPPED,
    description=(
        "Watches every landing folder ($PERSONALIZE_RAW_DIR/<source>/). When files are added, rewritten or "
        "removed, and the next tick finds them unchanged (not still being written), it observes the changed "
        "sources and builds everything downstream of them."
    ),
)
def raw_files_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    known = json.loads(context.cursor) if context.cursor else {}
    settling = known.pop(SETTLING_KEY, {})
    landing = changed_landing_folders(context.instance, known, settling)
    changed = landing.changed
    cursor = json.dumps({**known, **landing.seen, SETTLING_KEY: landing.settling}, sort_keys=True)
    if not changed:
        still = f" Waiting a tick for: {', '.join(sorted(landing.settling))}." if landing.settling else ""
        return SensorResult(skip_reason=SkipReason(f"No new raw files.{still}"), cursor=cursor)

    # Everything fed by the changed folders: staging, marts, scores, activation. Checks of those assets run
    # with them, so a failing error-severity dbt test stops the run before anything is delivered.
    graph = context.repository_def.asset_graph
    selected = AssetSelection.assets(*changed).downstream().resolve(graph)
    folders = sorted(key.path[-1] for key in changed)
    if landing.settling:
        context.log.info(
            "Changed since the last tick, left for the next: %s", ", ".join(sorted(landing.settling))
        )
    # One run per distinct set of file versions: a sensor restarted from an old cursor cannot start the
    # same build twice.
    run_key = hashlib.sha256(json.dumps(sorted((str(k), v) for k, v in changed.items())).encode()).hexdigest()
    return SensorResult(
        run_requests=[
            RunRequest(
                run_key=f"raw-{run_key[:16]}",
                asset_selection=sorted(selected, key=lambda key: key.to_user_string()),
                tags={TRIGGER_TAG: RAW_FILES_SENSOR_NAME, CHANGED_SOURCES_TAG: ",".join(folders)},
            )
        ],
        cursor=cursor,
    )


# Evaluates the AutomationCondition of every asset (set on dbt models by the translator).
declarative_automation = AutomationConditionSensorDefinition(
    "declarative_automation",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.STOPPED,
    description="Rebuilds the models after staging once their upstream assets were updated (eager).",
)
