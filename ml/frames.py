"""Reading the dbt-built ML tables and turning them into feature matrices.

The two tables follow one contract (built by dbt in models/ml/):

- ``ml.ml_training_examples``: one row per (person_id, cutoff_date, horizon_days), feature columns ``f_*``,
  the BTYD summary ``btyd_*`` as of the cutoff, and the labels of the window (cutoff, cutoff + horizon]:
  ``label_is_churned`` (0/1) and ``label_net_spend`` (>= 0). It holds the main label window and, with dbt
  var ml_short_horizon_days, a shorter one; ``load_training_examples`` reads one window at a time.
- ``ml.ml_scoring_features``: one row per person_id at the scoring as-of, same feature columns.
- ``ml.ml_seasonal_exposure``: per (cutoff_date, horizon_days) window, how much buying its calendar days
  carry relative to an average stretch (``seasonal_exposure``, 1 without a year of history); both loaders
  attach it to the frame (``ExampleFrame.exposure``).
- ``ml.ml_seasonal_clock``: one row per day of the order history, ``seasonal_clock`` the average days
  (days weighted by how much buying they carry) since its first day; both loaders attach it to the frame
  (``ExampleFrame.seasonal_clock``), and ml/stacking.py measures each person's BTYD history on it.

Features are every ``f_*`` column plus the four BTYD quantities, in one fixed order that is stored with
the model, so training and scoring build identical matrices.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd

TRAINING_TABLE = "ml.ml_training_examples"
SCORING_TABLE = "ml.ml_scoring_features"
SEASONAL_EXPOSURE_TABLE = "ml.ml_seasonal_exposure"
SEASONAL_CLOCK_TABLE = "ml.ml_seasonal_clock"
BTYD_COLUMNS = ("btyd_frequency", "btyd_recency", "btyd_t", "btyd_monetary_value")
FEATURE_PREFIX = "f_"
CHURN_LABEL = "label_is_churned"
SPEND_LABEL = "label_net_spend"
_KEY_COLUMNS = ("person_id", "cutoff_date", "horizon_days")


class FrameError(ValueError):
    """A training or scoring table breaks the contract; the message names the table and the column."""


@dataclass(frozen=True, eq=False)
class SeasonalClock:
    """Average days elapsed since ``first_day`` (SEASONAL_CLOCK_TABLE): ``readings[i]`` is the clock at the
    start of day first_day + i, one reading past the last day listed."""

    first_day: date
    readings: np.ndarray

    def average_days(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Average days from each start date to its end date (numpy datetime64[D] arrays). Days outside the
        listed ones count as calendar days: they have no seasonal history to weigh them by."""
        return self._at(end) - self._at(start)

    def _at(self, days: np.ndarray) -> np.ndarray:
        offset = (days.astype("datetime64[D]") - np.datetime64(self.first_day, "D")).astype(np.int64)
        listed = np.clip(offset, 0, self.readings.size - 1)
        return self.readings[listed] + (offset - listed)


@dataclass(frozen=True)
class ExampleFrame:
    """A validated table: rows, the feature columns in model order, and the single horizon it carries."""

    table: str
    rows: pd.DataFrame
    features: tuple[str, ...]
    horizon_days: int
    # (cutoff, window days) -> seasonal exposure, from SEASONAL_EXPOSURE_TABLE; empty: no adjustment.
    seasonal_exposures: Mapping[tuple[date, int], float] = field(default_factory=dict)
    # From SEASONAL_CLOCK_TABLE; None: the BTYD history is measured in calendar days.
    seasonal_clock: SeasonalClock | None = None

    def exposure(self, cutoff: date | pd.Timestamp, days: int) -> float:
        """The seasonal exposure of the window (cutoff, cutoff + days]: 1 when the frame carries none."""
        if not self.seasonal_exposures:
            return 1.0
        key = (pd.Timestamp(cutoff).date(), int(days))
        if key not in self.seasonal_exposures:
            raise FrameError(
                f"{SEASONAL_EXPOSURE_TABLE} has no {days}-day window at cutoff {key[0]}: rebuild the dbt ml "
                "models with the windows the model run uses (vars ml_horizon_days, ml_short_horizon_days)"
            )
        return self.seasonal_exposures[key]

    def with_rows(self, rows: pd.DataFrame, features: tuple[str, ...] | None = None) -> ExampleFrame:
        """The same table, horizon, exposures and clock with other rows (and features)."""
        return replace(self, rows=rows, features=self.features if features is None else features)

    @property
    def cutoffs(self) -> tuple[date, ...]:
        return tuple(sorted(pd.to_datetime(self.rows["cutoff_date"].unique()).date))

    @property
    def validation_cutoff(self) -> date:
        """The latest cutoff: its label window is the validation window every model is judged on."""
        return self.cutoffs[-1]

    @property
    def validation_fit_cutoffs(self) -> tuple[date, ...]:
        """Training cutoffs whose label window (cutoff, cutoff + horizon] ends on or before the validation
        cutoff: the only ones the validation fit may learn from.

        A later cutoff's window runs into the validation window, so the same purchases would be labels on
        both sides and a model that memorises people would look better there than on new data. Raises
        FrameError when no cutoff qualifies.
        """
        validation = self.validation_cutoff
        horizon = timedelta(days=self.horizon_days)
        clean = tuple(c for c in self.cutoffs[:-1] if c + horizon <= validation)
        if not clean:
            raise FrameError(
                f"{self.table}: no training cutoff's {self.horizon_days}-day label window ends by the "
                f"validation cutoff {validation} (cutoffs {[c.isoformat() for c in self.cutoffs]}), so "
                "validation would overlap training; build more cutoffs (dbt var ml_cutoff_count, at least "
                f"{1 + _cutoffs_to_clear(self.cutoffs, self.horizon_days)} at this spacing) or space them at "
                "least the horizon apart (ml_cutoff_spacing_days)"
            )
        return clean


def _cutoffs_to_clear(cutoffs: Sequence[date], horizon_days: int) -> int:
    """How many spacings of the cutoffs one label window spans (the spacing is the smallest gap)."""
    gaps = [(later - earlier).days for earlier, later in zip(cutoffs, cutoffs[1:], strict=False)]
    spacing = max(min(gaps), 1) if gaps else horizon_days
    return -(-horizon_days // spacing)


def feature_columns(columns: Sequence[str]) -> tuple[str, ...]:
    """The model's features: the ``f_*`` columns sorted by name, then the BTYD summary."""
    return tuple(sorted(c for c in columns if c.startswith(FEATURE_PREFIX))) + BTYD_COLUMNS


_NUMERIC_TYPES = {
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
    "UHUGEINT", "FLOAT", "DOUBLE", "BOOLEAN", "NULL",
}  # fmt: skip


def _is_numeric(duckdb_type: str) -> bool:
    return duckdb_type in _NUMERIC_TYPES or duckdb_type.startswith("DECIMAL")


def _read(
    con: duckdb.DuckDBPyConnection, table: str, labels: Sequence[str], horizon_days: int | None = None
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The contract's columns only, features as float32 and labels as double (half the memory at scale);
    with ``horizon_days``, only that label window's rows."""
    try:
        schema = {name: kind for name, kind, *_ in con.sql(f"describe {table}").fetchall()}
    except duckdb.CatalogException as exc:
        raise FrameError(f"{table} does not exist: build the dbt ml models first ({exc})") from exc
    missing = [c for c in (*_KEY_COLUMNS, *BTYD_COLUMNS, *labels) if c not in schema]
    if missing:
        raise FrameError(f"{table} is missing required column(s) {missing}")
    features = feature_columns(list(schema))
    for column in (*features, *labels):
        if not _is_numeric(schema[column]):
            raise FrameError(f"{table}.{column} must be numeric, got {schema[column]}")
    select = ", ".join(
        [
            "cast(person_id as varchar) as person_id",
            "cast(cutoff_date as date) as cutoff_date",
            "horizon_days",
            *(f'cast("{c}" as float) as "{c}"' for c in features),
            *(f'cast("{c}" as double) as "{c}"' for c in labels),
        ]
    )
    # A fixed row order: DuckDB returns rows in any order, and the fits (early stopping, the BTYD sample)
    # depend on it, so the same data would otherwise give different models, scores and tiers run to run.
    where = "" if horizon_days is None else f"where horizon_days = {int(horizon_days)}"
    return con.sql(f"select {select} from {table} {where} order by cutoff_date, person_id").df(), features


def _validate(frame: pd.DataFrame, features: tuple[str, ...], table: str) -> ExampleFrame:
    if frame.empty:
        raise FrameError(f"{table} has no rows")
    for column in BTYD_COLUMNS:
        if frame[column].isna().any():
            person = frame.loc[frame[column].isna(), "person_id"].iloc[0]
            raise FrameError(
                f"{table}.{column} is null for person_id {person!r} (scored people must have bought)"
            )
    horizons = frame["horizon_days"].unique()
    if len(horizons) != 1:
        raise FrameError(f"{table}.horizon_days must hold one value, got {sorted(horizons.tolist())}")
    duplicated = frame.duplicated(["person_id", "cutoff_date"])
    if duplicated.any():
        row = frame.loc[duplicated].iloc[0]
        raise FrameError(
            f"{table} has more than one row for person_id {row['person_id']!r} at cutoff {row['cutoff_date']}"
        )
    return ExampleFrame(table, frame.reset_index(drop=True), features, int(horizons[0]))


def _validate_labels(frame: pd.DataFrame, table: str) -> None:
    churned = frame[CHURN_LABEL]
    if churned.isna().any() or not churned.isin([0, 1]).all():
        bad = frame.loc[churned.isna() | ~churned.isin([0, 1]), "person_id"].iloc[0]
        raise FrameError(f"{table}.{CHURN_LABEL} must be 0 or 1, person_id {bad!r} has another value")
    spend = frame[SPEND_LABEL]
    if spend.isna().any() or (spend < 0).any():
        bad = frame.loc[spend.isna() | (spend < 0), "person_id"].iloc[0]
        raise FrameError(f"{table}.{SPEND_LABEL} must be a number >= 0, person_id {bad!r} has {spend.min()}")


def training_horizons(con: duckdb.DuckDBPyConnection, table: str = TRAINING_TABLE) -> tuple[int, ...]:
    """The label windows (days) the training table holds, longest (the main window) first."""
    try:
        rows = con.sql(f"select distinct horizon_days from {table} order by 1 desc").fetchall()
    except duckdb.CatalogException as exc:
        raise FrameError(f"{table} does not exist: build the dbt ml models first ({exc})") from exc
    return tuple(int(days) for (days,) in rows if days is not None)


def load_training_examples(
    con: duckdb.DuckDBPyConnection, table: str = TRAINING_TABLE, horizon_days: int | None = None
) -> ExampleFrame:
    """One label window of the training table, validated: 2+ cutoffs, the latest validates and at least one
    earlier one has a label window that ends by it (``ExampleFrame.validation_fit_cutoffs``).

    The table holds the main window (dbt var ml_horizon_days) and, when var ml_short_horizon_days is set, a
    shorter one; ``horizon_days`` picks one, None the main (longest) one.
    """
    horizons = training_horizons(con, table)
    if horizon_days is None and horizons:
        horizon_days = horizons[0]
    elif horizon_days is not None and horizon_days not in horizons:
        raise FrameError(
            f"{table} has no {horizon_days}-day label window (it holds {list(horizons) or 'no rows'}): "
            "build it with dbt var ml_horizon_days or ml_short_horizon_days"
        )
    frame = _validate(*_read(con, table, (CHURN_LABEL, SPEND_LABEL), horizon_days), table)
    _validate_labels(frame.rows, table)
    if len(frame.cutoffs) < 2:
        raise FrameError(
            f"{table} has a single cutoff {frame.cutoffs}: temporal validation needs at least two "
            "(the latest one validates models trained on the earlier ones)"
        )
    frame.validation_fit_cutoffs  # noqa: B018 - raises FrameError when validation would overlap training
    return replace(frame, seasonal_exposures=seasonal_exposures(con), seasonal_clock=seasonal_clock(con))


def load_scoring_features(con: duckdb.DuckDBPyConnection, table: str = SCORING_TABLE) -> ExampleFrame:
    """The scoring table, validated: one row per person at one cutoff (the as-of)."""
    frame = _validate(*_read(con, table, ()), table)
    if len(frame.cutoffs) != 1:
        raise FrameError(f"{table}.cutoff_date must hold one as-of date, got {list(frame.cutoffs)}")
    return replace(frame, seasonal_exposures=seasonal_exposures(con), seasonal_clock=seasonal_clock(con))


def seasonal_exposures(
    con: duckdb.DuckDBPyConnection, table: str = SEASONAL_EXPOSURE_TABLE
) -> dict[tuple[date, int], float]:
    """(cutoff, window days) -> seasonal exposure; empty when the table was not built (no adjustment)."""
    try:
        rows = con.sql(f"select cutoff_date, horizon_days, seasonal_exposure from {table}").fetchall()
    except duckdb.CatalogException:
        return {}
    exposures: dict[tuple[date, int], float] = {}
    for cutoff, days, exposure in rows:
        if exposure is None or not np.isfinite(exposure) or exposure < 0:
            raise FrameError(
                f"{table}.seasonal_exposure is {exposure!r} for the {days}-day window at {cutoff}"
            )
        exposures[(cutoff, int(days))] = float(exposure)
    return exposures


def seasonal_clock(con: duckdb.DuckDBPyConnection, table: str = SEASONAL_CLOCK_TABLE) -> SeasonalClock | None:
    """The seasonal clock; None when the table was not built or is empty (calendar days)."""
    try:
        days = con.sql(
            f"select clock_date, seasonal_index, seasonal_clock from {table} order by clock_date"
        ).df()
    except duckdb.CatalogException:
        return None
    if days.empty:
        return None
    dates = pd.to_datetime(days["clock_date"]).to_numpy("datetime64[D]")
    gaps = np.flatnonzero(np.diff(dates) != np.timedelta64(1, "D"))
    if gaps.size:
        raise FrameError(
            f"{table} must list consecutive days, one row each: {dates[gaps[0]]} is followed by "
            f"{dates[gaps[0] + 1]}"
        )
    index, clock = (days[c].to_numpy(dtype=np.float64) for c in ("seasonal_index", "seasonal_clock"))
    bad = ~np.isfinite(index) | (index < 0) | ~np.isfinite(clock)
    if bad.any():
        day_index, day_clock = float(index[bad][0]), float(clock[bad][0])
        raise FrameError(
            f"{table} has seasonal_index {day_index!r} and seasonal_clock {day_clock!r} on {dates[bad][0]}: "
            "the index must be a number >= 0 and the clock a number"
        )
    readings = np.append(clock, clock[-1] + index[-1])
    if (np.diff(readings) < -1e-9).any():
        day = dates[np.flatnonzero(np.diff(readings) < -1e-9)[0]]
        raise FrameError(f"{table}.seasonal_clock runs backwards after {day}: it must be a running total")
    return SeasonalClock(pd.Timestamp(dates[0]).date(), readings)


def feature_matrix(frame: ExampleFrame, features: Sequence[str]) -> np.ndarray:
    """float32 matrix of the given features in the given order; nulls become NaN (XGBoost's missing)."""
    missing = [c for c in features if c not in frame.rows.columns]
    if missing:
        raise FrameError(f"{frame.table} lacks feature column(s) {missing} that the model was trained on")
    return frame.rows.loc[:, list(features)].to_numpy(dtype=np.float32, na_value=np.nan)


def fingerprint(frame: ExampleFrame) -> str:
    """SHA-256 of the table's content (row order independent), of the seasonal exposures the model
    forecasts with and of the clock its BTYD history is measured on, to tell which data a model saw."""
    ordered = frame.rows.sort_values(["cutoff_date", "person_id"], kind="stable")
    row_hashes = pd.util.hash_pandas_object(ordered[sorted(ordered.columns)], index=False).to_numpy()
    digest = hashlib.sha256(row_hashes.tobytes())
    for (cutoff, days), exposure in sorted(frame.seasonal_exposures.items()):
        digest.update(f"|{cutoff.isoformat()}:{days}={exposure!r}".encode())
    if frame.seasonal_clock is not None:
        digest.update(f"|clock from {frame.seasonal_clock.first_day.isoformat()}:".encode())
        digest.update(np.ascontiguousarray(frame.seasonal_clock.readings, dtype=np.float64).tobytes())
    return digest.hexdigest()
