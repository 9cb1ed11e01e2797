"""`personalize run`: materialize the whole Dagster asset graph in this process, then summarize it.

The same definitions `make ui` serves (dbt models, the model layer, activation, the syncs and every check)
run as the `full_build` job with the in-process executor, so each step has the warehouse to itself. The
summary is read back from what the run recorded: people per segment and tier from the warehouse, model
metrics against the baselines from the registry, and the sync counts from the sync assets' metadata.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from personalize.activation_report import activation_summary
from personalize.settings import Settings

FULL_BUILD_JOB = "full_build"
# Dagster logs every event at INFO (one line per dbt model and test); the run prints its own progress.
QUIET_LOGGING = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class RunFailed(Exception):
    """A step of the run failed: the message names each failed asset step and why."""


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    materialized: int
    # asset key ("ml/churn_model") -> the metadata of its materialization in this run, as plain values
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed_checks: list[str] = field(default_factory=list)


def _plain(metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {name: getattr(value, "value", value) for name, value in metadata.items()}


def _instance():
    from dagster import DagsterInstance

    from dagster_app.instance import ensure_instance_config

    # A DAGSTER_HOME (set by `make`) keeps the run in the history `make ui` shows, under the same rules as
    # the UI's runs (the duckdb pool: a run started from the UI meanwhile waits); otherwise a throwaway one.
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return DagsterInstance.ephemeral()
    ensure_instance_config(Path(home))
    return DagsterInstance.get()


def _step_label(step_key: str | None) -> str:
    # The dbt models run as one or two steps (before and after the score assets) named after the dbt op.
    if step_key and step_key.startswith("personalize_dbt"):
        return f"dbt build (step {step_key})"
    return f"step {step_key}"


def materialize_all(progress: Callable[[str], None] | None = None) -> RunOutcome:
    """Run the full_build job (every asset and check) in this process; raise RunFailed naming failed steps."""
    from dagster import DagsterEventType

    from dagster_app.definitions import defs

    job = defs.resolve_job_def(FULL_BUILD_JOB)
    if progress:
        keys = job.asset_layer.selected_asset_keys
        progress(f"materializing {len(keys)} assets and their checks through Dagster (job {FULL_BUILD_JOB})")
    # dagster-dbt echoes dbt's log lines to stdout: they are progress, so they go to stderr with the rest of
    # it, and stdout carries only the summary.
    with _instance() as instance, contextlib.redirect_stdout(sys.stderr):
        result = job.execute_in_process(instance=instance, run_config=QUIET_LOGGING, raise_on_error=False)
    failures = [
        f"{_step_label(event.step_key)}: {event.event_specific_data.error.message.strip()}"
        for event in result.all_events
        if event.event_type == DagsterEventType.STEP_FAILURE
    ]
    if failures or not result.success:
        details = "\n".join(f"  - {failure}" for failure in failures) or "  (no failed step recorded)"
        raise RunFailed(f"Dagster run {result.run_id} failed:\n{details}")
    metadata = {
        event.asset_key.to_user_string(): _plain(event.materialization.metadata)
        for event in result.get_asset_materialization_events()
    }
    failed_checks = [
        f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        for evaluation in (
            event.event_specific_data
            for event in result.all_events
            if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
        )
        if not evaluation.passed
    ]
    return RunOutcome(result.run_id, len(metadata), metadata, failed_checks)


def model_summary(settings: Settings, outcome: RunOutcome) -> str:
    """Each model's candidate vs the baselines, the promotion decision and what scored (from the registry)."""
    from ml import registry
    from ml.pipeline import KindReport, ModelRunReport
    from ml.training import KINDS

    reports = {}
    for kind in KINDS:
        model = outcome.metadata.get(f"ml/{kind}_model")
        scores = outcome.metadata.get(f"ml/{kind}_scores")
        if model is None or scores is None:
            continue
        candidate = registry.load_metadata(settings.model_dir, kind, model["version"])
        reports[kind] = KindReport(
            kind=kind,
            candidate_version=candidate.version,
            validation_cutoff=candidate.validation_cutoff,
            validation_rows=int(model["validation_rows"]),
            metrics=candidate.metrics,
            promoted=candidate.promoted,
            reason=candidate.reason,
            active_version=str(scores["model_version"]),
            rows_scored=int(scores["dagster/row_count"]),
            reasons_method=str(scores["reasons_method"]),
            short_window=candidate.short_window_decision,
        )
    if not reports:
        return "no model was trained in this run"
    return "\n".join(["models vs baselines (validation window)", *ModelRunReport(reports).summary_lines()])


SYNC_COLUMNS = ("sent", "changed", "inserted", "removed", "rejected", "failed")


def sync_summary(outcome: RunOutcome) -> str:
    syncs = {key: values for key, values in outcome.metadata.items() if key.startswith("esp/")}
    if not syncs:
        return "no sync ran"
    lines = ["sync results", f"{'destination':<20}" + "".join(f"{name:>10}" for name in SYNC_COLUMNS)]
    for key, values in sorted(syncs.items()):
        destination = key.removeprefix("esp/").removesuffix("_sync")
        cells = "".join(f"{int(values.get(name, 0)):>10,}" for name in SYNC_COLUMNS)
        lines.append(
            f"{destination:<20}{cells}  ({values.get('outcome')}, {values.get('duration_seconds')} s)"
        )
    return "\n".join(lines)


def run_summary(settings: Settings, outcome: RunOutcome) -> str:
    parts = [
        f"Dagster run {outcome.run_id}: {outcome.materialized} assets materialized",
        activation_summary(settings.duckdb_path),
        model_summary(settings, outcome),
        sync_summary(outcome),
    ]
    if outcome.failed_checks:
        parts.append("checks that did not pass (warnings): " + ", ".join(outcome.failed_checks))
    parts.append(f"warehouse: {settings.duckdb_path}")
    return "\n\n".join(parts)
