"""The promotion rule: a candidate replaces the active model only if it beats every baseline.

Exact rule, on the validation window (the latest training cutoff, predictions from the model trained
without it):

- churn: the candidate's ROC AUC AND its lift at 10% are each strictly greater than those of every
  baseline (BG/NBD, Pareto/NBD, recency heuristic, frequency heuristic);
- LTV: the candidate's normalized Gini AND its Spearman correlation are each strictly greater than those
  of every baseline with an LTV prediction (BG/NBD + Gamma-Gamma, Pareto/NBD + Gamma-Gamma, frequency
  heuristic).

One exception: when churners are more than 10% of the window, a perfect top decile is all churners
and lift at 10% has a ceiling of 1 / churn rate; a candidate AT that ceiling ties rather than fails
against a baseline also at it (neither can do better there).

A baseline that could not be fitted on the data is left out of the comparison (the evaluation records
why). A metric that is not a number (e.g. no churner in the window) fails the rule. When the rule fails,
the previously active model stays active and the candidate's metadata records the failed comparisons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ml.evaluation import Evaluation
from ml.metrics import ChurnMetrics
from ml.training import CHURN, LTV, Kind

PROMOTION_METRICS: dict[Kind, tuple[str, ...]] = {
    CHURN: ("auc", "lift_at_10"),
    LTV: ("normalized_gini", "spearman"),
}
# The scalar metrics a metrics table shows (Dagster metadata, `personalize run`, `personalize backtest`),
# the promotion metrics first.
REPORTED_METRICS: dict[Kind, tuple[str, ...]] = {
    CHURN: (*PROMOTION_METRICS[CHURN], "pr_auc", "brier"),
    LTV: (*PROMOTION_METRICS[LTV], "top_20_capture", "decile_mape", "rmse", "total_ratio"),
}


@dataclass(frozen=True)
class PromotionDecision:
    promoted: bool
    reason: str


def decide(evaluation: Evaluation) -> PromotionDecision:
    metric_names = PROMOTION_METRICS[evaluation.kind]
    if not evaluation.baselines:
        return PromotionDecision(False, "no baseline could be evaluated, so the candidate cannot be compared")
    failures: list[str] = []
    for name in metric_names:
        ours = float(getattr(evaluation.model, name))
        for baseline, metrics in evaluation.baselines.items():
            theirs = float(getattr(metrics, name))
            if not _beats(ours, theirs, _ceiling(evaluation, name)):
                failures.append(f"{name} {ours:.4f} <= {baseline} {theirs:.4f}")
    if failures:
        return PromotionDecision(False, "does not beat every baseline: " + "; ".join(failures))
    compared = ", ".join(sorted(evaluation.baselines))
    return PromotionDecision(True, f"beats every baseline ({compared}) on {' and '.join(metric_names)}")


def _ceiling(evaluation: Evaluation, metric: str) -> float | None:
    if isinstance(evaluation.model, ChurnMetrics) and metric == "lift_at_10":
        return evaluation.model.lift_at_10_ceiling
    return None


def _beats(ours: float, theirs: float, ceiling: float | None) -> bool:
    if not (math.isfinite(ours) and math.isfinite(theirs)):
        return False
    at_ceiling = ceiling is not None and math.isclose(ours, ceiling, rel_tol=1e-9)
    return ours > theirs or (at_ceiling and math.isclose(theirs, ceiling, rel_tol=1e-9))


def best_baseline(evaluation: Evaluation) -> str:
    """The baseline with the highest first promotion metric (churn AUC, LTV normalized Gini)."""
    primary = PROMOTION_METRICS[evaluation.kind][0]

    def value(name: str) -> float:
        number = float(getattr(evaluation.baselines[name], primary))
        return number if math.isfinite(number) else -math.inf

    if not evaluation.baselines:
        raise ValueError(f"no {evaluation.kind} baseline could be evaluated")
    return max(sorted(evaluation.baselines), key=value)
