"""XGBoost churn classifier and LTV regressor with temporal validation.

Both models follow the same recipe:

1. the validation fit: train on the cutoffs whose label window ends by the latest cutoff
   (``ExampleFrame.validation_fit_cutoffs``), early-stopping on the latest cutoff (the validation window).
   Cutoffs in between are left out of this fit: their label windows run into the validation window, so
   the same purchases would be labels on both sides and memorising people would look like skill;
2. keep the validation predictions of that model: they are honest out-of-time predictions and feed the
   evaluation against the baselines, the promotion rule and the backtest's blend weights;
3. refit on ALL cutoffs with the number of rounds early stopping found; that model scores. The refit may
   use the overlapping cutoffs because nothing is measured on it, and the latest windows are the ones
   most like the scoring window (the dbt sets end the latest label window at the as-of, so every label
   the refit sees is complete). The rounds were found on fewer rows, which errs towards fewer trees.

Churn predicts ``label_is_churned`` (P(no purchase within the horizon)) with a logistic loss. LTV predicts
``label_net_spend`` with a Tweedie loss (log link: spend is zero for most people and heavy-tailed for the
rest), and its total is then calibrated: predictions are multiplied by actual / predicted total on the
validation window, so summed LTV matches what the window really brought in as well as ranking well.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np
import pandas as pd
import xgboost as xgb

from ml.frames import CHURN_LABEL, SPEND_LABEL, ExampleFrame, feature_matrix

Kind = Literal["churn", "ltv"]
CHURN: Kind = "churn"
LTV: Kind = "ltv"
KINDS: tuple[Kind, ...] = (CHURN, LTV)
LABELS: dict[Kind, str] = {CHURN: CHURN_LABEL, LTV: SPEND_LABEL}

Progress = Callable[[str], None]


# The settings of every fit: production (ml.pipeline), `personalize backtest` and the benchmarks. Shallow
# trees and large leaves learn corrections to the BTYD view the stacked features give (ml.stacking); Tweedie
# power 1.2 (closer to Poisson) for spend. First chosen on the synthetic demo's own temporal validation
# window (the 2025-07-04 cutoff, whose label window ends at the as-of: no ground truth involved), where
# depth 4 / leaves 50 / learning rate 0.1 / power 1.2 raised the validation AUC from 0.860 to 0.867 and the
# LTV Gini from 0.742 to 0.758 over depth 3 / leaves 20 / learning rate 0.05 / power 1.5.
# That window's validation fit then overlapped it (every earlier cutoff trained it, and their label windows
# ran into the validation window), which rewarded trees that memorise people: 12 cutoffs, rate features and
# depth 10 raised that validation Gini from 0.763 to 0.781 while the truth went from 0.7695 to 0.7686. The
# validation fit now trains only on cutoffs whose windows end by the validation cutoff (validation_fit_mask).
# Re-tuned on that clean window (`python -m bench.tune_synthetic`: 16 variants, each with seeds 0-2, the
# figures below their means): every variant lands within 0.0015 of the others, depth 4 gave churn AUC
# 0.8604 / LTV Gini 0.7486; depth 3 0.8603 / 0.7499; learning rate 0.05 0.8606 / 0.7498; four averaged
# trees per round 0.8607 / 0.7500 (at four times the cost); depth 5 and 6, min_child_weight 20 and 150,
# Tweedie 1.1 and 1.35, subsample 0.6, patience 50 and the combinations 0.7482 to 0.7500. A seed moves
# the Gini by up to 0.0005 either way, so the variants within that of the best are ties, and of those
# depth 3 is the cheapest: about as dear as depth 4 (more rounds of smaller trees; the backtest recipe's
# train + score at 100,000 customers, 315,842 rows, two runs each: 22.5 and 22.3 s CPU against 22.9 and
# 20.7), while learning rate 0.05 and four parallel trees cost about 1.5 and 4 times as much.
# Production trained with depth 6 / leaves 5 / learning rate 0.15 / power 1.5 until these settings were
# shared: on the demo's production windows (90 days, cutoff 2025-10-02) the validation figures went from
# AUC 0.8548 / Gini 0.7264 to 0.8549 / 0.7309 with these settings and 0.8574 / 0.7357 with the stacked
# features too (measured once, with a scratch script training each variant on the demo warehouse's ML sets;
# bench/results/ml.md has the production run against the oracle); at a million customers both fits take
# about 63 s instead of 29 s (train + predict; within the 5 minutes).
@dataclass(frozen=True)
class TrainingConfig:
    """Hyper-parameters shared by both models (the comment above says how they were chosen)."""

    max_rounds: int = 500
    early_stopping_rounds: int = 25
    learning_rate: float = 0.1
    max_depth: int = 3
    min_child_weight: float = 50.0
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    max_bin: int = 128
    nthread: int = 2
    seed: int = 0
    tweedie_variance_power: float = 1.2
    # Trees grown per round, each on its own row and column sample and averaged (XGBoost divides the
    # learning rate among them): a boosted random forest, less variance per round at k times the cost.
    parallel_trees: int = 1
    # Above this many rows a fit uses a uniform random sample of them: past several hundred thousand
    # examples more rows barely move the metrics, but the time grows linearly (1M people x 6 cutoffs is
    # millions of rows; the 5-minute budget at 1M customers on two cores sets this number).
    max_training_rows: int = 500_000
    # Early stopping evaluates the validation loss after every round; on a uniform sample of this many
    # validation rows (the loss of 200k rows is as good a stopping signal as that of 650k, at a third of
    # the cost). The validation predictions that the evaluation uses still cover every validation row.
    max_stopping_rows: int = 200_000

    def xgboost_params(self, kind: Kind) -> dict[str, object]:
        common: dict[str, object] = {
            "tree_method": "hist",
            "nthread": self.nthread,
            "seed": self.seed,
            "eta": self.learning_rate,
            "max_depth": self.max_depth,
            "min_child_weight": self.min_child_weight,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "max_bin": self.max_bin,
            "num_parallel_tree": self.parallel_trees,
        }
        if kind == CHURN:
            return {**common, "objective": "binary:logistic", "eval_metric": "logloss"}
        power = self.tweedie_variance_power
        return {
            **common,
            "objective": "reg:tweedie",
            "tweedie_variance_power": power,
            "eval_metric": f"tweedie-nloglik@{power}",
        }


@dataclass(frozen=True)
class TrainedModel:
    """A refit booster plus what the evaluation needs from its out-of-time twin."""

    kind: Kind
    booster: xgb.Booster
    features: tuple[str, ...]
    horizon_days: int
    cutoffs: tuple[date, ...]
    validation_cutoff: date
    validation_fit_cutoffs: tuple[date, ...]  # the cutoffs the validation fit trained on
    rounds: int
    calibration_scale: float  # multiplies LTV predictions (with a base margin, its level too); 1.0 for churn
    validation_person_ids: np.ndarray
    validation_actual: np.ndarray
    validation_predicted: np.ndarray  # from the model trained without the validation cutoff
    uncalibrated_total_ratio: float  # LTV predicted / actual total on validation before calibration
    training_rows: int
    params: dict[str, object]


def predict(
    booster: xgb.Booster,
    matrix: np.ndarray,
    features: Sequence[str],
    kind: Kind,
    calibration_scale: float = 1.0,
    base_margin: np.ndarray | None = None,
) -> np.ndarray:
    """Churn probability or calibrated spend per row (float64).

    ``base_margin`` (per row, in margin units) must be the one the model was trained with, if any.
    """
    raw = booster.predict(xgb.DMatrix(matrix, feature_names=list(features), base_margin=base_margin))
    prediction = raw.astype(np.float64)
    return prediction if kind == CHURN else prediction * calibration_scale


def _sample(n: int, config: TrainingConfig, limit: int | None = None) -> np.ndarray:
    limit = config.max_training_rows if limit is None else limit
    if n <= limit:
        return np.arange(n)
    rng = np.random.default_rng(config.seed)
    return np.sort(rng.choice(n, limit, replace=False))


def _cutoff_mask(examples: ExampleFrame, cutoffs: Sequence[date]) -> np.ndarray:
    return pd.to_datetime(examples.rows["cutoff_date"]).dt.date.isin(cutoffs).to_numpy()


def validation_mask(examples: ExampleFrame) -> np.ndarray:
    """Rows of the latest cutoff: the validation window every model and baseline is judged on."""
    return _cutoff_mask(examples, [examples.validation_cutoff])


def validation_fit_mask(examples: ExampleFrame) -> np.ndarray:
    """Rows the validation fit trains on: cutoffs whose label window ends by the validation cutoff."""
    return _cutoff_mask(examples, examples.validation_fit_cutoffs)


def train_model(
    examples: ExampleFrame,
    kind: Kind,
    config: TrainingConfig | None = None,
    progress: Progress | None = None,
    base_margin: np.ndarray | None = None,
) -> TrainedModel:
    """Temporal validation with early stopping (training cutoffs clear of the validation window only),
    then a refit on every cutoff.

    ``base_margin`` (one per row of ``examples.rows``, in margin units: log-odds of churn, log of spend)
    starts every row from a prior prediction, e.g. a BTYD model's, so the trees learn corrections to it.
    """
    config = config or TrainingConfig()
    say = progress or (lambda _message: None)
    rows = examples.rows
    label = LABELS[kind]
    validation_cutoff = examples.validation_cutoff
    fit_cutoffs = examples.validation_fit_cutoffs  # raises FrameError when none is clear of validation
    is_validation = validation_mask(examples)
    matrix = feature_matrix(examples, examples.features)
    target = rows[label].to_numpy(dtype=np.float64)
    params = config.xgboost_params(kind)

    # XGBoost ignores base_score on rows that carry a base margin, so the trees would start from the margin
    # alone: for a log-link LTV model on a margin without a level of its own (ml.stacking.seasonal_margin:
    # log exposure, 0 in an average stretch) that is a spend of 1. So an LTV margin is shifted by the log of
    # the rows' actual over their margin's spend, as base_score starts the trees without one, and the shift
    # of the refit is folded into the calibration scale that every prediction is multiplied by.
    def level(index: np.ndarray) -> float:
        if kind != LTV or base_margin is None:
            return 0.0
        implied, actual = float(np.exp(base_margin[index]).sum()), float(target[index].sum())
        return float(np.log(actual / implied)) if actual > 0 and implied > 0 else 0.0

    def margin(index: np.ndarray, shift: float) -> np.ndarray | None:
        return None if base_margin is None else base_margin[index] + shift

    train_index = np.flatnonzero(validation_fit_mask(examples))
    train_index = train_index[_sample(train_index.size, config)]
    validation_index = np.flatnonzero(is_validation)
    fit_level = level(train_index)
    train_matrix = xgb.QuantileDMatrix(
        matrix[train_index], label=target[train_index], feature_names=list(examples.features),
        max_bin=config.max_bin, nthread=config.nthread, base_margin=margin(train_index, fit_level),
    )  # fmt: skip
    stopping_index = validation_index[_sample(validation_index.size, config, config.max_stopping_rows)]
    stopping_matrix = xgb.DMatrix(
        matrix[stopping_index], label=target[stopping_index], feature_names=list(examples.features),
        nthread=config.nthread, base_margin=margin(stopping_index, fit_level),
    )  # fmt: skip
    say(f"{kind}: training on {train_index.size} rows of {len(fit_cutoffs)} cutoff(s) whose label windows "
        f"end by {validation_cutoff} ({len(examples.cutoffs) - 1 - len(fit_cutoffs)} overlapping left out), "
        f"validating on {validation_index.size} rows at {validation_cutoff}")  # fmt: skip
    early = xgb.train(
        params,
        train_matrix,
        num_boost_round=config.max_rounds,
        evals=[(stopping_matrix, "validation")],
        early_stopping_rounds=config.early_stopping_rounds,
        verbose_eval=False,
    )
    rounds = int(early.best_iteration) + 1
    validation_matrix = (
        stopping_matrix
        if stopping_index.size == validation_index.size
        else xgb.DMatrix(
            matrix[validation_index],
            feature_names=list(examples.features),
            nthread=config.nthread,
            base_margin=margin(validation_index, fit_level),
        )
    )
    validation_predicted = early.predict(validation_matrix, iteration_range=(0, rounds)).astype(np.float64)
    validation_actual = target[validation_index]

    calibration_scale, uncalibrated_ratio = 1.0, float("nan")
    if kind == LTV:
        predicted_total, actual_total = float(validation_predicted.sum()), float(validation_actual.sum())
        uncalibrated_ratio = predicted_total / actual_total if actual_total > 0 else float("nan")
        if predicted_total > 0 and actual_total > 0:
            calibration_scale = actual_total / predicted_total
        validation_predicted = validation_predicted * calibration_scale

    all_index = _sample(rows.shape[0], config)
    full_level = level(all_index)
    say(f"{kind}: {rounds} rounds; refitting on {all_index.size} rows of all {len(examples.cutoffs)} cutoffs")
    # The refit reuses the training matrix's histogram cut points (ref=): sketching the quantiles again
    # is a large share of the time at a million rows, and the cuts barely differ with one more cutoff.
    full_matrix = xgb.QuantileDMatrix(
        matrix[all_index], label=target[all_index], feature_names=list(examples.features),
        max_bin=config.max_bin, nthread=config.nthread, base_margin=margin(all_index, full_level),
        ref=train_matrix,
    )  # fmt: skip
    booster = xgb.train(params, full_matrix, num_boost_round=rounds, verbose_eval=False)
    calibration_scale *= float(np.exp(full_level))
    return TrainedModel(
        kind=kind,
        booster=booster,
        features=examples.features,
        horizon_days=examples.horizon_days,
        cutoffs=examples.cutoffs,
        validation_cutoff=validation_cutoff,
        validation_fit_cutoffs=fit_cutoffs,
        rounds=rounds,
        calibration_scale=calibration_scale,
        validation_person_ids=rows["person_id"].to_numpy()[validation_index],
        validation_actual=validation_actual,
        validation_predicted=validation_predicted,
        uncalibrated_total_ratio=uncalibrated_ratio,
        training_rows=int(all_index.size),
        params=params,
    )
