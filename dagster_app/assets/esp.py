"""Delivery: one sync asset per configured destination, sending the changes in `activation.esp_audience`.

`esp/file_sync` always exists (it writes to $PERSONALIZE_EXPORT_DIR). `esp/mailchimp_sync` and
`esp/klaviyo_sync` exist only when their environment variables are set (reverse_etl.configure names them),
so the code location loads on a machine with no ESP account. The reverse-ETL engine keeps what each
destination confirmed, so a materialization sends only rows that changed since the last one.
"""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AutomationCondition,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from dagster_app.instance import DUCKDB_POOL
from personalize.settings import load_settings
from personalize.sync import SyncSetupError, sync_audience
from reverse_etl.configure import DESTINATION_KINDS, MissingSetting, settings_from_env
from reverse_etl.models import SyncResult

ESP_AUDIENCE = AssetKey(["activation", "esp_audience"])
ESP_ERASURES = AssetKey(["activation", "esp_erasures"])
ESP_OPT_OUTS = AssetKey(["activation", "esp_opt_outs"])
# In the activation group so the 15-minute refresh (which selects the activation group downstream of the
# refreshed models) delivers what it rebuilt; the `esp` key prefix keeps them apart in the asset list.
SYNC_GROUP = "activation"
SYNC_OWNERS = ["team:crm-marketing"]
ALWAYS_CONFIGURED = ("file",)


def sync_asset_key(destination: str) -> AssetKey:
    return AssetKey(["esp", f"{destination}_sync"])


def configured_destinations() -> list[str]:
    """The file destination, plus every ESP whose environment variables are set now."""
    configured = []
    for destination in DESTINATION_KINDS:
        if destination in ALWAYS_CONFIGURED:
            configured.append(destination)
            continue
        try:
            settings_from_env(destination)
        except MissingSetting:
            continue
        configured.append(destination)
    return configured


def sync_metadata(result: SyncResult) -> dict[str, object]:
    return {
        "outcome": result.outcome,
        "mode": str(result.mode.value),
        "sent": result.sent,
        "changed": result.changes,
        "inserted": result.inserts,
        "removed": result.removed,
        "rejected": result.rejected,
        "failed": result.failed,
        "confirmed": result.confirmed,
        "erased": result.erased,
        "erase_failed": result.erase_failed,
        "unsubscribed": result.unsubscribed,
        "unsubscribe_failed": result.unsubscribe_failed,
        "duration_seconds": MetadataValue.float(round(result.duration_seconds, 3)),
        "sync_run_id": result.run_id,
    }


def build_sync_asset(destination: str) -> AssetsDefinition:
    @asset(
        key=sync_asset_key(destination),
        deps=[ESP_AUDIENCE, ESP_ERASURES, ESP_OPT_OUTS],
        group_name=SYNC_GROUP,
        owners=SYNC_OWNERS,
        kinds={destination},
        description=(
            f"Sends the rows of activation.esp_audience that changed since the last confirmed sync to "
            f"{destination} (inserts, changes, removals in mirror mode), after erasing there every address "
            "of activation.esp_erasures not erased yet and unsubscribing the people of "
            "activation.esp_opt_outs (Mailchimp, Klaviyo). Only consenting, not erased people are in the "
            "audience. Metadata: sent, changed, inserted, removed, rejected, failed, erased, duration."
        ),
        automation_condition=AutomationCondition.eager(),
        pool=DUCKDB_POOL,
    )
    def _sync(context: AssetExecutionContext) -> MaterializeResult:
        try:
            result = sync_audience(load_settings(), destination, progress=context.log.info)
        except SyncSetupError as error:
            raise Failure(description=f"{destination} sync cannot start: {error}") from None
        metadata = sync_metadata(result)
        if result.failed or result.erase_failed or result.unsubscribe_failed:
            # Nothing confirmed these rows or erasures: the next materialization sends them again.
            raise Failure(
                description=(
                    f"{destination} sync: {result.failed:,} rows failed to send "
                    f"(see reverse_etl.errors, run {result.run_id}), {result.erase_failed:,} erasures failed "
                    f"(see reverse_etl.erasures), {result.unsubscribe_failed:,} unsubscribes failed"
                ),
                metadata=metadata,
            )
        if result.rejected:
            context.log.warning(
                f"{destination} rejected {result.rejected:,} rows (listed in reverse_etl.errors, "
                f"run {result.run_id}); they are re-sent next time"
            )
        return MaterializeResult(metadata=metadata)

    return _sync


sync_assets = [build_sync_asset(destination) for destination in configured_destinations()]
