"""The model and every baseline scored on the same out-of-time rows: the latest training cutoff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from ml.baselines import BaselinePredictions
from ml.metrics import ChurnMetrics, LtvMetrics, churn_metrics, ltv_metrics
from ml.training import CHURN, Kind, TrainedModel

Metrics = ChurnMetrics | LtvMetrics
MODEL = "xgboost"


@dataclass(frozen=True)
class Evaluation:
    kind: Kind
    validation_cutoff: date
    rows: int
    model: Metrics
    baselines: dict[str, Metrics]
    unavailable: dict[str, str]  # baselines that could not be fitted, and why

    def metrics_table(self) -> dict[str, dict[str, object]]:
        """Name (the model first, then each baseline) -> its metrics, JSON-ready."""
        table = {MODEL: self.model.as_dict()}
        table.update({name: metrics.as_dict() for name, metrics in self.baselines.items()})
        return table


def evaluate(trained: TrainedModel, baselines: BaselinePredictions) -> Evaluation:
    """Metrics of ``trained``'s out-of-time predictions and of each baseline on the validation rows.

    ``baselines`` must come from ``predict_baselines`` on the validation cutoff's rows, in the same order.
    """
    actual = trained.validation_actual
    measure = churn_metrics if trained.kind == CHURN else ltv_metrics
    predictions = baselines.churn if trained.kind == CHURN else baselines.ltv
    for name, predicted in predictions.items():
        if np.shape(predicted) != actual.shape:
            raise ValueError(
                f"baseline {name} has {np.size(predicted)} predictions for {actual.size} validation rows"
            )
    return Evaluation(
        kind=trained.kind,
        validation_cutoff=trained.validation_cutoff,
        rows=int(actual.size),
        model=measure(actual, trained.validation_predicted),
        baselines={name: measure(actual, predicted) for name, predicted in predictions.items()},
        unavailable=dict(baselines.unavailable),
    )
