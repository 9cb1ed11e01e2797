"""The short label window: a second model pair for behaviour the main window's cutoffs predate.

The main window's latest training cutoff is d days before the scoring cutoff, so whatever began since is
in none of its training rows. A pair trained on a shorter window s, whose latest cutoff is s days old,
can learn it; its scores are mapped from s days to the horizon and averaged with the main pair's, but only
when some feature is unseen by the main window (`short_window`). The dbt training set holds both windows
(vars ml_horizon_days and ml_short_horizon_days).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date

import duckdb
import numpy as np
import pandas as pd

from ml.frames import ExampleFrame, feature_matrix, load_scoring_features, load_training_examples
from ml.stacking import horizon_ratios, stack_btyd
from ml.training import CHURN, LTV, TrainedModel, predict

# A second model pair trained on SHORT label windows, whose cutoffs reach up to `s` days before the scoring
# cutoff instead of `d`, mapped to the horizon like the main pair and averaged with it (SHORT_WINDOW_WEIGHT).
# The main window's latest cutoff is d days old: whatever began since (a newly connected ESP, a new site)
# is in no training row of it, and the model cannot learn what that behaviour is worth. On the synthetic
# demo (d = 180, 182 days of ESP history) no main training row had been sent an email; the 60-day window's
# latest cutoffs had. Over five generator seeds at 20k (bench/bench_ml.py, BENCHMARKS.md) the LTV Gini /
# oracle went from 0.9429 ± 0.0041 (none at 0.95) to 0.9484 ± 0.0042 (3 of 5), +0.005 to +0.007 on each
# seed, churn AUC / oracle from 0.9662 to 0.9682; with 1095 days of campaigns nothing is unseen, the short
# window is not used and the figures are unchanged (0.9523). Equal weights are the one weight used: a
# prototype compared weights on seed 42's ground truth only, so seeds 43-46 are the held-out check. 60-day
# windows 30 days apart give 24 cutoffs (two years). In that prototype, on seeds 42 and 43 and without the
# average, 30-day windows (40 cutoffs) scored within 0.001 of 60-day ones and 60-day windows 14 days apart
# up to 0.002 lower.
SHORT_WINDOW_DAYS = 60
SHORT_WINDOW_WEIGHT = 0.5
# Shorter label windows say little about who buys: most customers buy less than once a month.
MIN_SHORT_WINDOW_DAYS = 30


@dataclass(frozen=True)
class ShortWindow:
    """The short label window's training and scoring sets (BTYD stacked for s days) and, per kind, the
    ratios that carry its scores from s days to the horizon at the scoring cutoff."""

    examples: ExampleFrame
    scoring: ExampleFrame
    ratios: dict[str, np.ndarray]
    # The features it can teach and the main window cannot (set by short_window).
    teaches: tuple[str, ...] = ()

    @classmethod
    def load(cls, warehouse: duckdb.DuckDBPyConnection, short_days: int, horizon_days: int) -> ShortWindow:
        examples = stack_btyd(load_training_examples(warehouse, horizon_days=short_days), short_days)
        scoring = stack_btyd(load_scoring_features(warehouse), short_days)
        churn, ltv = horizon_ratios(scoring, short_days, horizon_days)
        return cls(examples, scoring, {CHURN: churn, LTV: ltv})

    @property
    def horizon_days(self) -> int:
        return self.examples.horizon_days

    def with_features(self, features: tuple[str, ...]) -> ShortWindow:
        """The same sets with the model features restricted (an ablation)."""
        return ShortWindow(
            ExampleFrame(self.examples.table, self.examples.rows, features, self.horizon_days),
            ExampleFrame(self.scoring.table, self.scoring.rows, features, self.horizon_days),
            self.ratios,
            self.teaches,
        )

    def up_to(self, cutoff: date) -> ExampleFrame:
        """The training set of the cutoffs up to `cutoff`: its validation fit predicts that cutoff's
        window from the cutoffs whose windows end by it."""
        rows = self.examples.rows
        kept = rows.loc[rows["cutoff_date"] <= pd.Timestamp(cutoff)].reset_index(drop=True)
        return ExampleFrame(self.examples.table, kept, self.examples.features, self.horizon_days)

    def scores(
        self, kind: str, trained: TrainedModel, margin: Callable[[ExampleFrame], np.ndarray | None]
    ) -> np.ndarray:
        """The short model's scores at the scoring cutoff, mapped to the horizon."""
        matrix = feature_matrix(self.scoring, trained.features)
        predicted = predict(
            trained.booster, matrix, trained.features, kind, trained.calibration_scale,
            base_margin=margin(self.scoring),
        )  # fmt: skip
        return predicted * self.ratios[kind]


def unseen_features(examples: ExampleFrame, scoring: ExampleFrame) -> tuple[str, ...]:
    """Features with one value (missing counts as a value) on every training row but several among the
    people scored: behaviour that began after the training cutoffs, which no tree can split on."""
    return tuple(
        name
        for name in examples.features
        if examples.rows[name].nunique(dropna=False) == 1 and scoring.rows[name].nunique(dropna=False) > 1
    )


def short_window(
    warehouse: duckdb.DuckDBPyConnection,
    examples: ExampleFrame,
    scoring: ExampleFrame,
    short_days: int,
    horizon_days: int,
) -> tuple[ShortWindow | None, str]:
    """The short window when it can teach what the main one cannot, and a clause saying why (or why not).

    It is used only when some feature is unseen by the main window's training rows (unseen_features) and
    varies over the short window's: otherwise the main pair has seen everything the short one has, and a
    shorter label is only a noisier one (on CDNOW, where nothing is unseen, averaging the two lowered the
    holdout's LTV Gini from 0.695 to 0.678).
    """
    unseen = unseen_features(examples, scoring)
    if not unseen:
        return None, (
            f"every feature of the people scored varies over the {examples.horizon_days}-day training rows"
        )
    short = ShortWindow.load(warehouse, short_days, horizon_days)
    learnable = [name for name in unseen if short.examples.rows[name].nunique(dropna=False) > 1]
    named = ", ".join(learnable[:5]) + (", ..." if len(learnable) > 5 else "")
    if not learnable:
        return None, (
            f"{len(unseen)} feature(s) vary among the people scored but over neither window's training rows "
            f"({', '.join(unseen[:5])})"
        )
    return replace(short, teaches=tuple(learnable)), (
        f"{len(learnable)} feature(s) vary over its training rows and among the people scored but not over "
        f"the {examples.horizon_days}-day training rows ({named})"
    )


def average_windows(main: np.ndarray, short: np.ndarray) -> np.ndarray:
    """The final model score of a kind: the main and the short window's scores, both for the horizon."""
    return (1.0 - SHORT_WINDOW_WEIGHT) * main + SHORT_WINDOW_WEIGHT * short
