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

import numpy as np
import xgboost as xgb

EXACT_MAX_ROWS = 5_000
TOP_REASONS = 3


def contributions(
    booster: xgb.Booster, matrix: np.ndarray, features: Sequence[str], exact: bool
) -> np.ndarray:
    """(rows, features + 1) contributions; the last column is the bias."""
    data = xgb.DMatrix(matrix, feature_names=list(features))
    return booster.predict(data, pred_contribs=True, approx_contribs=not exact).astype(np.float64)


def reasons_json(contribs: np.ndarray, features: Sequence[str], top: int = TOP_REASONS) -> list[str]:
    """One JSON array per row: the ``top`` features with the largest |contribution|, largest first."""
    per_feature = contribs[:, :-1]
    k = min(top, per_feature.shape[1])
    if k == 0:
        return ["[]"] * per_feature.shape[0]
    magnitude = np.abs(per_feature)
    candidates = np.argpartition(-magnitude, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(magnitude, candidates, axis=1), axis=1, kind="stable")
    chosen = np.take_along_axis(candidates, order, axis=1)
    values = np.take_along_axis(per_feature, chosen, axis=1)
    names = [json.dumps(name) for name in features]
    return [
        "["
        + ",".join(
            f'{{"feature":{names[f]},"contribution":{v:.6g}}}' for f, v in zip(row_f, row_v, strict=True)
        )
        + "]"
        for row_f, row_v in zip(chosen.tolist(), values.tolist(), strict=True)
    ]
