"""The model run end to end: train, evaluate against baselines, promote, score, write the score tables.

``train_evaluate_score`` is the one entry point for the CLI and Dagster. The steps are public too, so an
orchestrator can run them as separate assets: ``train_candidates`` (train + evaluate + promotion decision,
stored in the registry) and ``score_active`` (score with whatever is active and write the tables).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np

from ml import plots, registry
from ml.baselines import BaselinePredictions, predict_baselines
from ml.evaluation import MODEL, Evaluation, evaluate
from ml.frames import (
    ExampleFrame,
    fingerprint,
    load_scoring_features,
    load_training_examples,
    training_horizons,
)
from ml.promotion import PROMOTION_METRICS, REPORTED_METRICS, PromotionDecision, best_baseline, decide
from ml.registry import ModelMetadata, ShortModelMetadata
from ml.scoring import Scores, score, write_scores
from ml.stacking import report_unfittable, seasonal_margin, with_btyd_features
from ml.training import (
    CHURN,
    KINDS,
    Kind,
    Progress,
    TrainedModel,
    TrainingConfig,
    train_model,
    validation_mask,
)
from ml.windows import (
    SHORT_WINDOW_WEIGHT,
    ShortPair,
    ShortWindow,
    ShortWindowError,
    short_window,
    train_short_pair,
)


@dataclass(frozen=True)
class TrainingSets:
    """What a run trains on: the main label window's rows with the BTYD features stacked and, when it can
    teach what they cannot, the short window's (ml/windows.py). ``short_decision`` says why or why not."""

    examples: ExampleFrame
    short: ShortWindow | None
    short_decision: str

    def fingerprint(self) -> str:
        """The training data's fingerprint: the main rows', combined with the short window's when used."""
        main = fingerprint(self.examples)
        if self.short is None:
            return main
        return hashlib.sha256(f"{main}|{fingerprint(self.short.examples)}".encode()).hexdigest()


def load_training_sets(con: duckdb.DuckDBPyConnection, progress: Progress | None = None) -> TrainingSets:
    """``ml.ml_training_examples``' main window, and its short window (dbt var ml_short_horizon_days) when
    some feature of the people scored is unseen by the main window's training rows (short_window)."""
    examples = load_training_examples(con)
    if progress:
        progress(
            f"loaded {len(examples.rows)} training rows, cutoffs {[c.isoformat() for c in examples.cutoffs]}"
        )
    shorter = [days for days in training_horizons(con) if days < examples.horizon_days]
    short: ShortWindow | None = None
    if not shorter:
        decision = "not built (dbt var ml_short_horizon_days is 0 or not below ml_horizon_days)"
    else:
        # With `unfittable`, a short window too thin to train on is not used rather than stopping the run.
        short, reason = short_window(
            con, examples, load_scoring_features(con), shorter[0], examples.horizon_days,
            report_unfittable(progress),
        )  # fmt: skip
        decision = f"{shorter[0]}-day window {'used' if short else 'not used'}: {reason}"
    if progress:
        progress(f"short window: {decision}")
    return TrainingSets(with_btyd_features(examples, progress), short, decision)


@dataclass(frozen=True)
class Candidate:
    """One trained model with its evaluation, the promotion decision and what the registry stored."""

    trained: TrainedModel
    evaluation: Evaluation
    decision: PromotionDecision
    metadata: ModelMetadata
    baselines: BaselinePredictions  # on the validation rows, for charts

    def plots(self) -> dict[str, bytes]:
        """PNG charts of the validation window: model vs baselines."""
        actual = self.trained.validation_actual
        kind = self.trained.kind
        scorers = {MODEL: self.trained.validation_predicted}
        scorers.update(self.baselines.churn if kind == CHURN else self.baselines.ltv)
        charts = {
            "lift": plots.lift_png(actual, scorers, title=f"{kind}: cumulative lift, validation window")
        }
        if kind == CHURN:
            charts["roc"] = plots.roc_png(actual, scorers)
        charts["deciles"] = plots.decile_png(
            actual, self.trained.validation_predicted, title=f"{kind}: deciles"
        )
        return charts


def validation_baselines(examples: ExampleFrame) -> BaselinePredictions:
    """Baselines fitted and predicted on the validation cutoff's rows, in the order the models see them."""
    return predict_baselines(examples.rows.loc[validation_mask(examples)], examples.horizon_days)


def train_candidate(
    sets: TrainingSets,
    model_dir: Path,
    kind: Kind,
    *,
    baselines: BaselinePredictions | None = None,
    config: TrainingConfig | None = None,
    progress: Progress | None = None,
    data_fingerprint: str | None = None,
) -> Candidate:
    """Train one kind, evaluate it against the baselines, apply the promotion rule, store it.

    With a short window the short model is trained too, and what is evaluated, promoted and scored is the
    average of the two (ml/windows.py); the candidate's validation predictions are the average's.

    ``baselines`` and ``data_fingerprint`` (``sets.fingerprint()``) may be passed when several kinds
    share them: at millions of rows each costs seconds.
    """
    examples = sets.examples

    def margin(frame: ExampleFrame) -> np.ndarray | None:
        return seasonal_margin(frame, kind)

    examples_margin = margin(examples)
    trained = train_model(examples, kind, config, progress, base_margin=examples_margin)
    short_pair: ShortPair | None = None
    if sets.short is not None:
        short_pair = train_short_pair(sets.short, trained, config, progress, margin)
        trained = short_pair.averaged(trained)
    baselines = baselines or validation_baselines(examples)
    evaluation = evaluate(trained, baselines)
    decision = decide(evaluation)
    created_at = datetime.now(UTC)
    data_fingerprint = data_fingerprint or sets.fingerprint()
    validation_cutoff = trained.validation_cutoff.isoformat()
    metadata = ModelMetadata(
        version=registry.make_version(kind, validation_cutoff, data_fingerprint, created_at),
        kind=kind,
        created_at=created_at.isoformat(),
        cutoffs=[c.isoformat() for c in trained.cutoffs],
        validation_cutoff=validation_cutoff,
        horizon_days=trained.horizon_days,
        features=list(trained.features),
        training_fingerprint=data_fingerprint,
        training_rows=trained.training_rows,
        rounds=trained.rounds,
        calibration_scale=trained.calibration_scale,
        params={**trained.params, "uncalibrated_total_ratio": trained.uncalibrated_total_ratio},
        metrics=evaluation.metrics_table(),
        best_baseline=best_baseline(evaluation),
        promoted=decision.promoted,
        reason=decision.reason,
        unavailable_baselines=evaluation.unavailable,
        validation_fit_cutoffs=[c.isoformat() for c in trained.validation_fit_cutoffs],
        short_window=_short_metadata(trained, sets.short, short_pair),
        short_window_decision=sets.short_decision,
        base_margin=registry.NO_MARGIN if examples_margin is None else registry.SEASONAL_MARGIN,
    )
    registry.save(model_dir, trained.booster, metadata, short_pair.trained.booster if short_pair else None)
    if progress:
        verdict = "promoted" if decision.promoted else "not promoted"
        averaged = f" (averaged with its {sets.short.horizon_days}-day model)" if sets.short else ""
        progress(f"{kind}: candidate {metadata.version}{averaged} {verdict}: {decision.reason}")
    return Candidate(trained, evaluation, decision, metadata, baselines)


def _short_metadata(
    main: TrainedModel, short: ShortWindow | None, pair: ShortPair | None
) -> ShortModelMetadata | None:
    if short is None or pair is None:
        return None
    if main.features != pair.trained.features:
        # Scoring gives both boosters one feature matrix (ml.scoring).
        raise ShortWindowError(
            f"the {short.horizon_days}-day model's features differ from the {main.horizon_days}-day model's"
        )
    trained = pair.trained
    return ShortModelMetadata(
        horizon_days=trained.horizon_days,
        cutoffs=[c.isoformat() for c in trained.cutoffs],
        validation_fit_cutoffs=[c.isoformat() for c in pair.validation_fit_cutoffs],
        training_rows=trained.training_rows,
        rounds=trained.rounds,
        calibration_scale=trained.calibration_scale,
        weight=SHORT_WINDOW_WEIGHT,
        teaches=list(short.teaches),
    )


def iter_candidates(
    sets: TrainingSets,
    model_dir: Path,
    *,
    kinds: Sequence[Kind] = KINDS,
    config: TrainingConfig | None = None,
    progress: Progress | None = None,
) -> Iterator[Candidate]:
    """Train, evaluate and promote each kind in turn, sharing one baseline fit and one data fingerprint.

    A generator, so that an orchestrator can report each model as soon as it is stored, and can close the
    warehouse (after load_training_sets) before the training, which takes the longest."""
    baselines = validation_baselines(sets.examples)
    data_fingerprint = sets.fingerprint()
    for kind in kinds:
        yield train_candidate(
            sets,
            model_dir,
            kind,
            baselines=baselines,
            config=config,
            progress=progress,
            data_fingerprint=data_fingerprint,
        )


def train_candidates(
    con: duckdb.DuckDBPyConnection,
    model_dir: Path,
    *,
    kinds: Sequence[Kind] = KINDS,
    config: TrainingConfig | None = None,
    progress: Progress | None = None,
) -> dict[Kind, Candidate]:
    """Train, evaluate and promote each kind on ``ml.ml_training_examples`` (iter_candidates)."""
    sets = load_training_sets(con, progress)
    candidates = iter_candidates(sets, model_dir, kinds=kinds, config=config, progress=progress)
    return {candidate.trained.kind: candidate for candidate in candidates}


def score_active(
    con: duckdb.DuckDBPyConnection,
    model_dir: Path,
    *,
    kinds: Sequence[Kind] = KINDS,
    progress: Progress | None = None,
) -> dict[Kind, Scores]:
    """Score ``ml.ml_scoring_features`` with each kind's active model (or best baseline); write the tables."""
    scoring = with_btyd_features(load_scoring_features(con), progress)
    scored_at = datetime.now(UTC)
    needs_baseline = any(registry.active_version(model_dir, kind) is None for kind in kinds)
    baselines = predict_baselines(scoring.rows, scoring.horizon_days) if needs_baseline else None
    results = {
        kind: score(scoring, model_dir, kind, scored_at=scored_at, baselines=baselines) for kind in kinds
    }
    write_scores(con, results)
    if progress:
        for kind, result in results.items():
            progress(f"{kind}: scored {len(result.frame)} people with {result.model_version}")
    return results


@dataclass(frozen=True)
class KindReport:
    kind: Kind
    candidate_version: str
    validation_cutoff: str
    validation_rows: int
    metrics: dict[str, dict[str, object]]  # "xgboost" and each baseline -> metrics
    promoted: bool
    reason: str
    active_version: str  # what scored: a registry version or "baseline:<name>"
    rows_scored: int
    reasons_method: str
    short_window: str = ""  # ModelMetadata.short_window_decision


def _format(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) and math.isfinite(value) else str(value)


@dataclass(frozen=True)
class ModelRunReport:
    kinds: dict[Kind, KindReport]

    def summary_lines(self) -> list[str]:
        lines: list[str] = []
        for kind, report in self.kinds.items():
            verdict = "PROMOTED" if report.promoted else "not promoted"
            lines.append(f"{kind}: candidate {report.candidate_version} {verdict}: {report.reason}")
            columns = REPORTED_METRICS[kind]
            lines.append(f"  validation {report.validation_cutoff} ({report.validation_rows} rows)")
            lines.append("  " + "".join(f"{name:>22}" for name in ("", *columns)))
            for scorer, metrics in report.metrics.items():
                lines.append(
                    "  " + f"{scorer:>22}" + "".join(f"{_format(metrics.get(c)):>22}" for c in columns)
                )
            lines.append(f"  scored {report.rows_scored} people with {report.active_version}")
            lines.append(f"  reasons: {report.reasons_method}")
            if report.short_window:
                lines.append(f"  short window: {report.short_window}")
        return lines


def train_evaluate_score(
    con: duckdb.DuckDBPyConnection,
    model_dir: Path,
    *,
    progress: Progress | None = None,
    config: TrainingConfig | None = None,
) -> ModelRunReport:
    """Train both models, evaluate them against the baselines, promote per the rule, score, write tables."""
    candidates = train_candidates(con, model_dir, config=config, progress=progress)
    scores = score_active(con, model_dir, kinds=tuple(candidates), progress=progress)
    return run_report(candidates, scores)


def run_report(candidates: Mapping[Kind, Candidate], scores: Mapping[Kind, Scores]) -> ModelRunReport:
    """The report of a run whose steps were called one by one (as separate Dagster assets do)."""
    reports: dict[Kind, KindReport] = {}
    for kind, candidate in candidates.items():
        scored = scores[kind]
        reports[kind] = KindReport(
            kind=kind,
            candidate_version=candidate.metadata.version,
            validation_cutoff=candidate.metadata.validation_cutoff,
            validation_rows=candidate.evaluation.rows,
            metrics=candidate.metadata.metrics,
            promoted=candidate.decision.promoted,
            reason=candidate.decision.reason,
            active_version=scored.model_version,
            rows_scored=int(len(scored.frame)),
            reasons_method=scored.reasons_method,
            short_window=candidate.metadata.short_window_decision,
        )
    return ModelRunReport(reports)


__all__ = [
    "PROMOTION_METRICS",
    "Candidate",
    "KindReport",
    "TrainingSets",
    "ModelRunReport",
    "score_active",
    "train_candidate",
    "iter_candidates",
    "train_candidates",
    "train_evaluate_score",
    "load_training_sets",
    "run_report",
    "validation_baselines",
    "with_btyd_features",
]
