"""Fixtures for the BTYD tests."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.ml.cdnow import CALIBRATION_END, HOLDOUT_END, btyd_summary, cdnow_purchase_days


@pytest.fixture(scope="session")
def cdnow() -> pd.DataFrame:
    """Calibration 1997-01-01..1997-09-30 in weeks, holdout to 1998-06-30 (39 weeks)."""
    return btyd_summary(cdnow_purchase_days(), CALIBRATION_END, HOLDOUT_END)
