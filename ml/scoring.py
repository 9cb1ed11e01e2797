"""Scoring with the active model (or the best baseline) and writing ``ml.churn_scores`` / ``ml.ltv_scores``.

Each table: person_id varchar (unique), score double, model_version varchar, scored_at timestamp (UTC),
reasons varchar (JSON array of the top contributions; ``[]`` for baseline scores, which have none).
When no model of a kind was ever promoted, the baseline that did best on the latest candidate's
validation window scores instead and model_version says so ("baseline:pareto_nbd"): scores always exist.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from ml import explain, registry
from ml.baselines import BaselinePredictions, predict_baselines
from ml.frames import ExampleFrame, feature_matrix
from ml.stacking import horizon_ratios, report_unfittable, seasonal_margin, stack_btyd, with_btyd_features
from ml.training import CHURN, Kind, predict
from ml.windows import average_scores, average_windows, short_level

SCORE_TABLES: dict[Kind, str] = {"churn": "ml.churn_scores", "ltv": "ml.ltv_scores"}
BASELINE_PREFIX = "baseline:"
_SCHEMA = "person_id varchar, score double, model_version varchar, scored_at timestamp, reasons varchar"


class ScoringError(RuntimeError):
    """Nothing to score with: no model of that kind was ever trained."""


@dataclass(frozen=True)
class Scores:
    kind: Kind
    model_version: str
    frame: pd.DataFrame  # the rows of the score table
    # "exact TreeSHAP", "approximate (Saabas)" or "none (baseline)"; with a short window it adds that the
    # reasons are the weighted mean of both models' contributions and how the short model's scores were
    # brought to the main model's level: an LTV factor, a churn log-odds shift (or why the main model scored
    # alone).
    reasons_method: str

    @property
    def is_baseline(self) -> bool:
        return self.model_version.startswith(BASELINE_PREFIX)


def _frame(
    person_ids: np.ndarray, score: np.ndarray, version: str, scored_at: datetime, reasons: list[str]
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "person_id": person_ids.astype(str),
            "score": score.astype(np.float64),
            "model_version": version,
            "scored_at": pd.Timestamp(scored_at.astimezone(UTC).replace(tzinfo=None)),
            "reasons": reasons,
        }
    )


def score(
    scoring: ExampleFrame,
    model_dir: Path,
    kind: Kind,
    *,
    scored_at: datetime | None = None,
    baselines: BaselinePredictions | None = None,
) -> Scores:
    """Score every row of ``scoring`` for ``kind``. ``baselines`` may be passed to reuse a BTYD fit."""
    scored_at = scored_at or datetime.now(UTC)
    version = registry.active_version(model_dir, kind)
    if version is not None:
        metadata = registry.load_metadata(model_dir, kind, version)
        if metadata.horizon_days != scoring.horizon_days:
            raise ScoringError(
                f"active {kind} model {version} predicts {metadata.horizon_days} days but {scoring.table} "
                f"asks for {scoring.horizon_days}: retrain first"
            )
        if not set(metadata.features) <= set(scoring.rows.columns):
            scoring = with_btyd_features(scoring)
        person_ids = scoring.rows["person_id"].to_numpy()
        booster = registry.load_booster(model_dir, kind, version)
        matrix = feature_matrix(scoring, metadata.features)
        margin = model_margin(scoring, metadata)
        predicted = predict(booster, matrix, metadata.features, kind, metadata.calibration_scale, margin)
        exact = matrix.shape[0] <= explain.EXACT_MAX_ROWS
        contribs = explain.contributions(booster, matrix, metadata.features, exact=exact, base_margin=margin)
        method = "exact TreeSHAP" if exact else "approximate (Saabas)"
        if metadata.short_window is not None:
            predicted, contribs, note = _average_short_window(
                scoring, model_dir, metadata, predicted, contribs, exact=exact
            )
            method += note
        reasons = explain.reasons_json(contribs, metadata.features)
        return Scores(kind, version, _frame(person_ids, predicted, version, scored_at, reasons), method)

    person_ids = scoring.rows["person_id"].to_numpy()
    candidate = registry.latest(model_dir, kind)
    if candidate is None:
        raise ScoringError(f"no {kind} model in {model_dir}: train one before scoring")
    baselines = baselines or predict_baselines(scoring.rows, scoring.horizon_days)
    predictions = baselines.churn if kind == CHURN else baselines.ltv
    if candidate.best_baseline not in predictions:
        reason = baselines.unavailable.get(candidate.best_baseline, "no prediction of this kind")
        raise ScoringError(
            f"best {kind} baseline {candidate.best_baseline} cannot score {scoring.table}: {reason}"
        )
    version = BASELINE_PREFIX + candidate.best_baseline
    predicted = np.clip(predictions[candidate.best_baseline], 0.0, None)
    frame = _frame(person_ids, predicted, version, scored_at, ["[]"] * len(person_ids))
    return Scores(kind, version, frame, "none (baseline)")


def model_margin(scoring: ExampleFrame, metadata: registry.ModelMetadata) -> np.ndarray | None:
    """The base margin the model was trained with, for the frame's window (``scoring.horizon_days``)."""
    if metadata.base_margin == registry.SEASONAL_MARGIN:
        return seasonal_margin(scoring, metadata.kind)
    return None


def _average_short_window(
    scoring: ExampleFrame,
    model_dir: Path,
    metadata: registry.ModelMetadata,
    predicted: np.ndarray,
    contribs: np.ndarray,
    *,
    exact: bool,
) -> tuple[np.ndarray, np.ndarray, str]:
    """The main model's scores and contributions averaged with its short window's (ml/windows.py), and
    what to add to the reasons method.

    The short model reads the BTYD features fitted for its own window, and its scores are carried to the
    horizon by BG/NBD fitted at the as-of, as in training, and averaged as in validation (average_scores:
    at the main model's LTV total or churn mean over the people scored, a factor or shift the note gives).
    Each score's reasons are the weighted mean of the two models' contributions: they add up to the same
    mean of the two raw margins, in margin units.
    When BG/NBD cannot be fitted on these people, the main model alone scores everyone and the note says so.
    """
    short = metadata.short_window
    assert short is not None
    short_scoring = stack_btyd(scoring, short.horizon_days, report_unfittable())
    if not np.array_equal(short_scoring.rows["person_id"].to_numpy(), scoring.rows["person_id"].to_numpy()):
        raise ScoringError(f"{scoring.table}: restacking for the short window reordered the people scored")
    try:
        churn_ratio, ltv_ratio = horizon_ratios(short_scoring, short.horizon_days, metadata.horizon_days)
    except (ValueError, RuntimeError) as exc:
        note = f"the {metadata.horizon_days}-day model alone (its short window cannot be mapped: {exc})"
        warnings.warn(f"{metadata.kind} scores: {note}", RuntimeWarning, stacklevel=3)
        return predicted, contribs, f"; {note}"
    booster = registry.load_booster(model_dir, metadata.kind, metadata.version, short=True)
    matrix = feature_matrix(short_scoring, metadata.features)
    ratio = churn_ratio if metadata.kind == CHURN else ltv_ratio
    margin = model_margin(short_scoring, metadata)
    short_predicted = ratio * predict(
        booster, matrix, metadata.features, metadata.kind, short.calibration_scale, margin
    )
    short_contribs = explain.contributions(booster, matrix, metadata.features, exact, base_margin=margin)
    note = (
        f", the {metadata.horizon_days}-day and {short.horizon_days}-day models' contributions averaged "
        f"with weights {1.0 - short.weight:g} and {short.weight:g}"
    )
    # How far the short model's level was off is worth seeing: the scores carry only its ranking.
    level = short_level(metadata.kind, predicted, short_predicted)
    moved = f"log-odds shifted by {level:+.3f}" if metadata.kind == CHURN else f"scores scaled by {level:.3f}"
    reached = "mean" if metadata.kind == CHURN else "total"
    note += f"; the {short.horizon_days}-day model's {moved} to the main model's {reached}"
    return (
        average_scores(metadata.kind, predicted, short_predicted, short.weight, level),
        average_windows(contribs, short_contribs, short.weight),
        note,
    )


def write_scores(con: duckdb.DuckDBPyConnection, scores: Mapping[Kind, Scores] | list[Scores]) -> None:
    """Replace the score tables in one transaction: readers see all old or all new scores."""
    batch = list(scores.values()) if isinstance(scores, Mapping) else list(scores)
    for item in batch:
        if item.frame["person_id"].duplicated().any():
            duplicate = item.frame.loc[item.frame["person_id"].duplicated(), "person_id"].iloc[0]
            raise ValueError(f"{SCORE_TABLES[item.kind]} would hold person_id {duplicate!r} twice")
    con.execute("begin transaction")
    try:
        con.execute("create schema if not exists ml")
        for item in batch:
            table = SCORE_TABLES[item.kind]
            view = f"_scores_{item.kind}"
            con.register(view, item.frame)
            try:
                con.execute(f"create or replace table {table} ({_SCHEMA})")
                con.execute(
                    f"insert into {table} select cast(person_id as varchar), cast(score as double), "
                    f"cast(model_version as varchar), cast(scored_at as timestamp), cast(reasons as varchar) "
                    f"from {view}"
                )
            finally:
                con.unregister(view)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
