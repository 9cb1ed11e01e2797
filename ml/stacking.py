"""BTYD quantities as XGBoost inputs, and the mapping of a model's window to a longer horizon.

A data scientist's BG/NBD + Gamma-Gamma view of each person, fitted at every cutoff on that cutoff's BTYD
summary only (nothing after it), becomes features (`stack_btyd`) and can be the trees' starting point
(`btyd_margin`), so XGBoost learns corrections to the BTYD view rather than re-deriving it from raw recency
and frequency. The stacked features are in every model (the production run, ml.pipeline, too), and so is
`horizon_ratios` (which carries a prediction for d days to D days with the same model) wherever a short
window is averaged in (ml/windows.py); the margin is `personalize backtest`'s and the synthetic
benchmark's. The view measures each person's history on the seasonal clock (dbt ml_seasonal_clock) and
forecasts each window for its effective days (ml_seasonal_exposure), both in average days.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date

import numpy as np
import pandas as pd

from ml.btyd import (
    BgNbdParams,
    conditional_expected_spend,
    expected_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    probability_alive,
    probability_no_purchase,
)
from ml.frames import BTYD_COLUMNS, ExampleFrame, SeasonalClock
from ml.training import CHURN, Progress


class StackingError(ValueError):
    """BG/NBD cannot be fitted at a cutoff; the message names the cutoff."""


# BG/NBD and Gamma-Gamma have four and three population-level parameters; 10,000 customers pin them down
# well, and each cutoff is fitted (six or seven fits per run), so the fits are sampled below the
# baselines' 30,000 (ml.baselines.FIT_SAMPLE_ROWS): at a million customers they were half the run.
STACK_FIT_SAMPLE_ROWS = 10_000


def btyd_summary(
    rows: pd.DataFrame, clock: SeasonalClock | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each row's BTYD summary (x, t_x, T, m) as of its cutoff; on ``clock``, t_x and T in average days.

    BG/NBD assumes buying at a steady rate. With a holiday peak, someone whose purchases fell in the rush
    has a short calendar recency and looks more active at a New Year cutoff than they are; in average
    days the rush is long. Over five synthetic seeds (20k customers, 180-day windows) measuring the history
    on the seasonal clock brought `personalize backtest`'s LTV total from 1.28 to 1.13 times the truth, its
    LTV Gini / oracle from 0.9489 to 0.9503 and its churn AUC / oracle from 0.9675 to 0.9685 (BENCHMARKS.md).
    """
    x, t_x, big_t, m = (rows[c].to_numpy(dtype=np.float64) for c in BTYD_COLUMNS)
    if clock is None:
        return x, t_x, big_t, m
    cutoff = pd.to_datetime(rows["cutoff_date"]).to_numpy().astype("datetime64[D]")
    first = cutoff - big_t.astype(np.int64).astype("timedelta64[D]")
    last = first + t_x.astype(np.int64).astype("timedelta64[D]")
    return x, clock.average_days(first, last), clock.average_days(first, cutoff), m


@dataclass(frozen=True)
class BtydView:
    """BG/NBD + Gamma-Gamma fitted on one cutoff's summary (nothing after it), for one frame's rows; with a
    seasonal clock the history is in average days (btyd_summary), else in calendar days as the classic
    baselines have it."""

    params: BgNbdParams
    spend_per_purchase: np.ndarray | None  # None when Gamma-Gamma cannot be fitted
    summary: tuple[np.ndarray, np.ndarray, np.ndarray]

    @classmethod
    def fit(cls, rows: pd.DataFrame, seed: int = 0, clock: SeasonalClock | None = None) -> BtydView:
        x, t_x, big_t, m = btyd_summary(rows, clock)
        n = x.size
        sample = np.sort(np.random.default_rng(seed).choice(n, min(n, STACK_FIT_SAMPLE_ROWS), replace=False))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            params = fit_bgnbd(x[sample], t_x[sample], big_t[sample])
            # As ml.baselines: a repeat buyer whose mean repeat spend is not positive (refunds) gets the
            # population mean, like a one-time buyer.
            usable = (x > 0) & (m > 0)
            x_spend, m_spend = np.where(usable, x, 0.0), np.where(usable, m, 0.0)
            try:
                repeat = sample[x_spend[sample] > 0]
                spend = conditional_expected_spend(
                    fit_gamma_gamma(x_spend[repeat], m_spend[repeat]), x_spend, m_spend
                )
            except (ValueError, RuntimeError):
                spend = None
        return cls(params, spend, (x, t_x, big_t))

    def no_purchase(self, days: float) -> np.ndarray:
        return probability_no_purchase(self.params, days, *self.summary)

    def purchases(self, days: float) -> np.ndarray:
        return expected_purchases(self.params, days, *self.summary)

    def features(self, days: float) -> dict[str, np.ndarray]:
        purchases = self.purchases(days)
        columns = {
            "f_stack_bgnbd_p_alive": probability_alive(self.params, *self.summary),
            "f_stack_bgnbd_no_purchase": self.no_purchase(days),
            "f_stack_bgnbd_purchases": purchases,
        }
        if self.spend_per_purchase is not None:
            columns["f_stack_gg_spend_per_purchase"] = self.spend_per_purchase
            columns["f_stack_bgnbd_gg_ltv"] = purchases * self.spend_per_purchase
        return columns


STACKED_FEATURES = (
    "f_stack_bgnbd_p_alive", "f_stack_bgnbd_no_purchase", "f_stack_bgnbd_purchases",
    "f_stack_gg_spend_per_purchase", "f_stack_bgnbd_gg_ltv",
)  # fmt: skip


def stack_btyd(
    frame: ExampleFrame, training_horizon: int, unfittable: Callable[[str], None] | None = None
) -> ExampleFrame:
    """The frame plus STACKED_FEATURES: each cutoff's own BTYD fit's view of the training window, which
    becomes the frame's window (``horizon_days``): a scoring frame stacked for a short model is scored for
    the short window.

    Rows come back sorted by cutoff and person: dbt's row order varies between builds, and the fits'
    samples and XGBoost's row subsampling follow row order, so the same data must give the same order.
    A cutoff where BG/NBD cannot be fitted raises StackingError, or, given ``unfittable``, is reported to
    it and keeps missing values (XGBoost's trees send them down their default branch): the production run
    scores with the order history alone rather than stopping on data too thin for BG/NBD.
    """
    rows = frame.rows.sort_values(["cutoff_date", "person_id"], kind="stable").reset_index(drop=True)
    for name in STACKED_FEATURES:
        rows[name] = np.nan
    for cutoff, index in rows.groupby("cutoff_date").groups.items():
        try:
            view = BtydView.fit(
                rows.loc[index], seed=pd.Timestamp(cutoff).day_of_year, clock=frame.seasonal_clock
            )
        except (ValueError, RuntimeError) as exc:
            message = (
                f"BG/NBD cannot be fitted on the {len(index)} customers at cutoff {cutoff:%Y-%m-%d}: {exc}"
            )
            if unfittable is None:
                raise StackingError(message) from exc
            unfittable(message)
            continue
        for name, values in view.features(effective_days(frame, cutoff, training_horizon)).items():
            rows.loc[index, name] = values
    # A frame stacked before (for another window) is restacked: its features keep one copy of each.
    features = tuple(name for name in frame.features if name not in STACKED_FEATURES)
    return replace(frame.with_rows(rows, (*features, *STACKED_FEATURES)), horizon_days=training_horizon)


def effective_days(frame: ExampleFrame, cutoff: date | pd.Timestamp, days: int) -> float:
    """The window (cutoff, cutoff + days] in average days: its length times its seasonal exposure.

    BG/NBD assumes buying at a steady rate; a retailer's is not (a window holding the holidays carries
    more than one without). Forecasting for the window's effective days keeps each cutoff's BTYD view, the
    trees' base margin and the horizon ratios on the window's season rather than the year's average: on
    the synthetic demo, validated on a July-December window and scoring January-June, the LTV total was
    1.5 times the truth without it (ml_seasonal_exposure, dbt).
    """
    return days * frame.exposure(cutoff, days)


def report_unfittable(progress: Progress | None = None) -> Callable[[str], None]:
    """stack_btyd's ``unfittable`` for the production run: the message goes to ``progress``, else to a
    warning, and the cutoff keeps missing values."""

    def unfittable(message: str) -> None:
        text = f"BTYD features missing: {message}"
        if progress:
            progress(text)
        else:
            warnings.warn(text, RuntimeWarning, stacklevel=3)

    return unfittable


def with_btyd_features(frame: ExampleFrame, progress: Progress | None = None) -> ExampleFrame:
    """The rows as every model is trained and scored on: the dbt features plus each cutoff's BG/NBD +
    Gamma-Gamma view (STACKED_FEATURES), fitted for the frame's horizon. A cutoff too thin for
    BG/NBD keeps missing values, and ``progress`` (else a warning) says so."""
    return stack_btyd(frame, frame.horizon_days, unfittable=report_unfittable(progress))


def horizon_ratios(
    scoring: ExampleFrame, trained_days: int, horizon_days: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per person: P(no purchase in D) / P(none in d) and E[purchases in D] / E[purchases in d] (BG/NBD),
    each window in its effective days at the frame's one cutoff."""
    n = len(scoring.rows)
    if trained_days == horizon_days:
        return np.ones(n), np.ones(n)
    (cutoff,) = scoring.cutoffs
    short_days, long_days = (effective_days(scoring, cutoff, d) for d in (trained_days, horizon_days))
    view = BtydView.fit(scoring.rows, clock=scoring.seasonal_clock)
    none_d, none_big = view.no_purchase(short_days), view.no_purchase(long_days)
    expected_d, expected_big = view.purchases(short_days), view.purchases(long_days)
    churn_ratio = np.where(none_d > 0, none_big / np.maximum(none_d, 1e-300), 1.0)
    ltv_ratio = np.where(
        expected_d > 0, expected_big / np.maximum(expected_d, 1e-300), long_days / short_days
    )
    return np.clip(churn_ratio, 0.0, 1.0), ltv_ratio


def btyd_margin(frame: ExampleFrame, kind: str) -> np.ndarray:
    """The stacked BG/NBD prediction in XGBoost margin units: log-odds of churn, log of expected spend.

    Without a Gamma-Gamma fit, expected spend is expected purchases times the person's average order value.
    """
    rows = frame.rows
    if kind == CHURN:
        # BG/NBD's probabilities are trusted to 1e-4: a margin of +-9.2 is certainty enough for the trees.
        return log_odds(rows["f_stack_bgnbd_no_purchase"].to_numpy(dtype=np.float64), floor=1e-4)
    spend = rows["f_stack_bgnbd_gg_ltv"].to_numpy(dtype=np.float64)
    fallback = rows["f_stack_bgnbd_purchases"].to_numpy(dtype=np.float64) * rows[
        "f_avg_order_value"
    ].to_numpy(dtype=np.float64)
    spend = np.where(np.isnan(spend), fallback, spend)
    return np.log(np.maximum(np.nan_to_num(spend, nan=0.0), 1e-3))


def log_odds(probability: np.ndarray, floor: float) -> np.ndarray:
    """Log-odds of probabilities clipped to [floor, 1 - floor], so that 0 and 1 stay finite."""
    p = np.clip(probability, floor, 1 - floor)
    return np.log(p / (1 - p))


def seasonal_margin(frame: ExampleFrame, kind: str) -> np.ndarray | None:
    """The margin of a model without a BTYD prior: for LTV, the log of each row's seasonal exposure (its
    cutoff's window of the frame's ``horizon_days``), so the trees learn spend per average stretch and the
    scores carry the scoring window's season; None for churn, and without exposures (no year of history).

    Spend in a window is proportional to its exposure, so with the Tweedie model's log link this offset is
    exact. Without it a model validated on a window holding the holidays is calibrated to them: on the
    synthetic demo the production run's LTV total was 1.40-1.45 times the truth over January-June, with it
    0.93-0.97 (seeds 42, 43, 46), its LTV Gini / oracle 0.001-0.002 lower; with the seasonal clock and
    the short window's LTV averaged at this model's total since, 0.96 ± 0.03 over five seeds (README,
    Seasonality). The margin has no level of its own (0 in an average stretch): ml.training.train_model
    gives LTV margins the data's.
    """
    if kind == CHURN or not frame.seasonal_exposures:
        return None
    cutoffs = pd.to_datetime(frame.rows["cutoff_date"])
    exposure = {cutoff: frame.exposure(cutoff, frame.horizon_days) for cutoff in cutoffs.unique()}
    # An exposure of 0 (no orders in those days a year earlier) forecasts next to nothing, as btyd_margin
    # floors a zero spend, rather than minus infinity.
    return np.log(np.maximum(cutoffs.map(exposure).to_numpy(dtype=np.float64), 1e-3))


def bgnbd_prediction(view: BtydView, rows: pd.DataFrame, kind: str, days: float) -> np.ndarray:
    """BG/NBD P(no purchase) or expected spend (Gamma-Gamma, else the person's average order value)."""
    if kind == CHURN:
        return view.no_purchase(days)
    spend = view.spend_per_purchase
    if spend is None:
        spend = rows["f_avg_order_value"].to_numpy(dtype=np.float64)
    return view.purchases(days) * np.nan_to_num(spend, nan=0.0)
