"""Per-score reasons: each customer's top feature contributions from XGBoost's ``pred_contribs``.

Contributions are in the model's margin units (log-odds of churn; log of expected spend for the Tweedie
LTV model) and, with the bias term, add up to the raw margin of that customer's prediction. Exact
TreeSHAP costs O(trees x leaves x depth^2) per row: we measured ~9 ms per row for a 324-tree churn model
on two shared cores, two minutes for the 13k-person demo and hours at a million. So above
``EXACT_MAX_ROWS`` the Saabas approximation (``approx_contribs``: the same per-tree path attribution
without averaging over feature orderings, same additivity, ~50x faster) is used; the scoring result
says which one ran.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import duckdb
import numpy as np
import pandas as pd
import xgboost as xgb

EXACT_MAX_ROWS = 5_000
TOP_REASONS = 3


def contributions(
    booster: xgb.Booster,
    matrix: np.ndarray,
    features: Sequence[str],
    exact: bool,
    base_margin: np.ndarray | None = None,
) -> np.ndarray:
    """(rows, features + 1) contributions; the last column is the bias, which includes ``base_margin`` (the
    one the model was trained with, if any)."""
    data = xgb.DMatrix(matrix, feature_names=list(features), base_margin=base_margin)
    return booster.predict(data, pred_contribs=True, approx_contribs=not exact).astype(np.float64)


def reasons_json(contribs: np.ndarray, features: Sequence[str], top: int = TOP_REASONS) -> list[str]:
    """One JSON array per row: the ``top`` features with the largest |contribution|, largest first.

    The text is assembled by DuckDB from the chosen (feature, contribution) columns: formatting a million
    rows' JSON in a Python loop took longer than the whole model fit (half a minute per model at a million
    people), DuckDB does it vectorized on every core in about a second.
    """
    per_feature = contribs[:, :-1]
    k = min(top, per_feature.shape[1])
    if k == 0:
        return ["[]"] * per_feature.shape[0]
    magnitude = np.abs(per_feature)
    candidates = np.argpartition(-magnitude, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(magnitude, candidates, axis=1), axis=1, kind="stable")
    chosen = np.take_along_axis(candidates, order, axis=1)
    values = np.take_along_axis(per_feature, chosen, axis=1)
    columns: dict[str, np.ndarray] = {"row_number": np.arange(chosen.shape[0])}
    for i in range(k):
        columns[f"feature_{i}"] = chosen[:, i].astype(np.int32) + 1  # DuckDB lists are 1-based
        columns[f"contribution_{i}"] = values[:, i].astype(np.float64)
    items = " || ',' || ".join(
        f"""'{{"feature":' || $names[feature_{i}] || ',"contribution":' """
        f"""|| printf('%.6g', contribution_{i}) || '}}'"""
        for i in range(k)
    )
    chosen_frame = pd.DataFrame(columns)
    with duckdb.connect() as con:
        con.execute("set enable_progress_bar = false")
        con.register("chosen", chosen_frame)
        text = con.execute(
            f"select '[' || {items} || ']' from chosen order by row_number",
            {"names": [json.dumps(name) for name in features]},
        ).fetchnumpy()
    return next(iter(text.values())).tolist()
