"""Blending a model with a BTYD model, the weight chosen on the validation cutoff.

`choose_blend` picks w in w x model + (1 - w) x BTYD by the (metric, baseline) comparisons the blend leaves
unwon on the validation window (TARGET_METRICS, the CDNOW target's comparisons), then the better AUC or
normalized Gini. Used by `personalize backtest`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ml.baselines import BGNBD
from ml.metrics import decile_mape, lift_at, normalized_gini, rmse, roc_auc, spearman, top_share_capture
from ml.training import CHURN, LTV, TrainedModel

# The final score blends the model with a BTYD model fitted at the same cutoff: w x model + (1 - w) x BTYD,
# with the partner and w chosen on the validation cutoff (inside the calibration period, never on the
# holdout): the trees' corrections are shrunk by as much as out-of-time data says they overfit. Partners:
# BG/NBD (+ Gamma-Gamma, the stacked view) and Pareto/NBD (+ Gamma-Gamma, as ml.baselines fits it), when it
# can be fitted. Pareto/NBD is fitted at the validation and scoring cutoffs only, never stacked at every
# training cutoff: at young cutoffs its likelihood falls into slow quadrature (CDNOW's 1997-05-03 cutoff:
# no fit after 15 minutes, while 1997-07-02 takes a second). Pareto/NBD alone (w = 0) ties the baseline and
# so never wins a comparison with it.
BLEND_BASELINE = BGNBD
BLEND_WEIGHTS = tuple(i / 10 for i in range(10, -1, -1))  # model-heavy first: ties keep more model
# The base margins a model is trained with: the stacked BG/NBD prediction, or none (XGBoost's constant
# start; for LTV shifted by the window's seasonal exposure, ml.stacking.seasonal_margin, which is 0 without
# a year of history, as on CDNOW), chosen per kind on the validation cutoff with the partner and w. With
# the BG/NBD margin early stopping keeps one or two trees on CDNOW (the model stays BG/NBD); without it 32
# (churn) and 19 (LTV).
# CDNOW, comparisons unwon on the validation cutoff 1997-07-02 (the rule), best w, AUC / Gini; and on the
# earlier cutoff 1997-06-02 (validation fit on 1997-02-02 and 1997-03-04; a check only, not part of the
# rule), where the same pair comes first (measured with the training settings' earlier depth 4):
#   margin, partner        churn 07-02        LTV 07-02          churn 06-02        LTV 06-02
#   bg_nbd, bg_nbd         2, w 1.0, 0.7388   6, w 1.0, 0.5883   2, w 0.5, 0.7111   7, w 0.1, 0.5672
#   bg_nbd, pareto_nbd     2, w 0.0, 0.7499   5, w 0.2, 0.6122   1, w 0.2, 0.7190   5, w 0.2, 0.5907
#   none,   bg_nbd         1, w 0.5, 0.7482   6, w 0.5, 0.6021   2, w 0.3, 0.7187   4, w 0.4, 0.5808
#   none,   pareto_nbd     0, w 0.2, 0.7513   2, w 0.1, 0.6158   1, w 0.2, 0.7216   3, w 0.1, 0.5918
# With depth 3 the 1997-07-02 columns read 2, w 1.0, 0.7369 and 8, w 0.4, 0.5714; 2, w 0.0, 0.7499 and 7,
# w 0.1, 0.6114; 1, w 0.5, 0.7457 and 6, w 0.3, 0.5911; 0, w 0.2, 0.7508 and 2, w 0.2, 0.6180 (same order):
# the same pair comes first, with w 0.2 for both kinds.
# On the synthetic demo's 180-day sets (validation cutoff 2025-07-04) the same rule keeps the BG/NBD margin
# and w = 1 for churn (AUC 0.8603, nothing unwon), and for LTV takes the model without the margin, 0.9 x
# model + 0.1 x Pareto/NBD (Gini 0.7494, nothing unwon; the BG/NBD-margin model alone also has 0.7494 but
# leaves one comparison unwon).
BASE_MARGINS = ("bg_nbd", "none")
# The comparisons the model must win against every baseline (metric, higher is better), as the CDNOW
# target counts them.
TARGET_METRICS: dict[str, tuple[tuple[str, bool], ...]] = {
    CHURN: (("auc", True), ("lift_at_10", True)),
    LTV: (("spearman", True), ("normalized_gini", True), ("top_20_capture", True), ("decile_mape", False),
          ("rmse", False)),
}  # fmt: skip


@dataclass(frozen=True)
class Blend:
    """How one kind's final score mixes the model with a BTYD model, and the validation score it got."""

    baseline: str  # the BTYD partner: bg_nbd or pareto_nbd
    model_weight: float
    validation_metric: str
    validation_score: float
    model_only_score: float
    base_margin: str = "bg_nbd"  # what the model was trained on top of: "bg_nbd" or "none" (BASE_MARGINS)
    # (metric, baseline) comparisons on the validation cutoff that the blend and the model alone do not
    # win; None when no baselines were given.
    validation_losses: int | None = None
    model_only_losses: int | None = None

    def apply(self, model: np.ndarray, baseline: np.ndarray) -> np.ndarray:
        return self.model_weight * model + (1.0 - self.model_weight) * baseline

    def rank(self) -> tuple[float, float]:
        """Sort key, smaller is better: fewer unwon comparisons, then the better validation metric."""
        return (self.validation_losses or 0, -self.validation_score)


def unwon_comparisons(kind: str, score: dict[str, float], baselines: dict[str, dict[str, float]]) -> int:
    """How many (metric, baseline) pairs the score does not strictly beat; a baseline's undefined metric
    (a heuristic without a spend model) is no comparison, the score's own undefined metric loses."""
    losses = 0
    for values in baselines.values():
        for name, higher in TARGET_METRICS[kind]:
            theirs, mine = values[name], score[name]
            if not math.isfinite(theirs):
                continue
            losses += not (math.isfinite(mine) and (mine > theirs if higher else mine < theirs))
    return losses


def target_metrics(kind: str, actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """The TARGET_METRICS of one prediction (the same functions as ml.metrics' churn_metrics and
    ltv_metrics, without the rest of their tables: the blend search computes these many times)."""
    if kind == CHURN:
        return {"auc": roc_auc(actual, predicted), "lift_at_10": lift_at(actual, predicted, 0.1)}
    return {
        "spearman": spearman(actual, predicted),
        "normalized_gini": normalized_gini(actual, predicted),
        "top_20_capture": top_share_capture(actual, predicted, 0.2),
        "decile_mape": decile_mape(actual, predicted),
        "rmse": rmse(actual, predicted),
    }


def choose_blend(
    kind: str,
    trained: TrainedModel,
    baseline: np.ndarray,
    validation_baselines: dict[str, dict[str, float]] | None = None,
    base_margin: str = "bg_nbd",
    partner: str = BLEND_BASELINE,
) -> Blend:
    """The weight of the model against ``baseline`` (the predictions of the BTYD model named ``partner``)
    whose validation predictions leave the fewest comparisons with ``validation_baselines`` (each
    baseline's ``target_metrics`` on the validation window) unwon, then the best validation AUC (churn) or
    normalized Gini (LTV); without baselines the best metric alone. Ties keep more model."""
    actual, model = trained.validation_actual, trained.validation_predicted
    name = "auc" if kind == CHURN else "normalized_gini"

    def blend(weight: float) -> Blend:
        scores = target_metrics(kind, actual, weight * model + (1.0 - weight) * baseline)
        losses = (
            None if validation_baselines is None else unwon_comparisons(kind, scores, validation_baselines)
        )
        return Blend(partner, weight, name, float(scores[name]), float("nan"), base_margin, losses)

    alone = blend(1.0)
    best = alone
    for weight in BLEND_WEIGHTS[1:]:
        candidate = blend(weight)
        if candidate.rank() < (best.rank()[0], best.rank()[1] - 1e-9):
            best = candidate
    return replace(best, model_only_score=alone.validation_score, model_only_losses=alone.validation_losses)
