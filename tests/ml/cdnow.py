"""The CDNOW 1/10 sample turned into a BTYD summary, the way Fader, Hardie & Lee (2005) did it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

CDNOW_SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cdnow" / "CDNOW_sample.txt"
CALIBRATION_END = pd.Timestamp("1997-09-30")
HOLDOUT_END = pd.Timestamp("1998-06-30")
HOLDOUT_WEEKS = 39.0
WEEK = pd.Timedelta(days=7)


def cdnow_purchase_days() -> pd.DataFrame:
    """One row per (customer, purchase day) with the day's total spend: same-day lines are one transaction."""
    lines = pd.read_csv(
        CDNOW_SAMPLE,
        sep=r"\s+",
        header=None,
        names=["master_id", "customer", "date", "cds", "dollars"],
        dtype={"master_id": str, "customer": int, "date": str, "cds": int, "dollars": float},
    )
    lines["date"] = pd.to_datetime(lines["date"], format="%Y%m%d")
    return lines.groupby(["customer", "date"], as_index=False).agg(dollars=("dollars", "sum"))


def btyd_summary(
    days: pd.DataFrame, calibration_end: pd.Timestamp, holdout_end: pd.Timestamp
) -> pd.DataFrame:
    """lifetimes' summary_data_from_transaction_data semantics at daily resolution, times in weeks.

    frequency: repeat purchase days in calibration; recency: weeks from first to last calibration purchase;
    T: weeks from first purchase to the calibration end; monetary_value: mean spend of the repeat purchase
    days (0 without repeats); holdout and holdout_spend: purchase days in (calibration_end, holdout_end]
    and their spend.
    """
    first = days.groupby("customer")["date"].min().rename("first")
    days = days.join(first, on="customer")
    calibration = days[days["date"] <= calibration_end]
    by_customer = calibration.groupby("customer")
    summary = pd.DataFrame(
        {
            "frequency": (by_customer.size() - 1).astype(float),
            "recency": (by_customer["date"].max() - first) / WEEK,
            "T": (calibration_end - first) / WEEK,
        }
    )
    repeats = calibration[calibration["date"] > calibration["first"]]
    summary["monetary_value"] = (
        repeats.groupby("customer")["dollars"].mean().reindex(summary.index).fillna(0.0)
    )
    in_holdout = days[(days["date"] > calibration_end) & (days["date"] <= holdout_end)]
    summary["holdout"] = in_holdout.groupby("customer").size().reindex(summary.index).fillna(0).astype(float)
    summary["holdout_spend"] = (
        in_holdout.groupby("customer")["dollars"].sum().reindex(summary.index).fillna(0.0)
    )
    summary["first"] = first
    return summary
