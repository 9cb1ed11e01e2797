"""Evaluation metrics for churn probabilities and spend predictions, written out in numpy.

Ties in the score are treated as a random order inside the tied group (in expectation): a heuristic that
gives thousands of customers the same score gets neither the best nor the worst order for them. So AUC
counts a tied (positive, negative) pair as half, and the top-k metrics take a tied group at the cut-off
pro rata.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata

FloatArray = npt.NDArray[np.float64]


def _pair(actual: npt.ArrayLike, predicted: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    y = np.asarray(actual, dtype=np.float64).ravel()
    s = np.asarray(predicted, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"actual and predicted differ in length: {y.size} vs {s.size}")
    if y.size == 0:
        raise ValueError("no rows to evaluate")
    if not (np.isfinite(y).all() and np.isfinite(s).all()):
        raise ValueError("actual and predicted must be finite")
    return y, s


def _binary(y: FloatArray) -> None:
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("a binary label must be 0 or 1")


def roc_auc(actual: npt.ArrayLike, score: npt.ArrayLike) -> float:
    """P(score of a random positive > score of a random negative), ties counting one half."""
    y, s = _pair(actual, score)
    _binary(y)
    positives = float(y.sum())
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(s)  # average ranks: the Mann-Whitney U statistic with ties as one half
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def roc_curve(actual: npt.ArrayLike, score: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """(false positive rate, true positive rate) at every distinct threshold, from (0, 0) to (1, 1)."""
    y, s = _pair(actual, score)
    _binary(y)
    order = np.argsort(-s, kind="stable")
    y, s = y[order], s[order]
    group_ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    tp = np.cumsum(y)[group_ends]
    fp = (group_ends + 1) - tp
    tpr = np.r_[0.0, tp / max(y.sum(), 1.0)]
    fpr = np.r_[0.0, fp / max(y.size - y.sum(), 1.0)]
    return fpr, tpr


def average_precision(actual: npt.ArrayLike, score: npt.ArrayLike) -> float:
    """PR-AUC as average precision: sum over thresholds of precision x recall gained."""
    y, s = _pair(actual, score)
    _binary(y)
    positives = y.sum()
    if positives == 0:
        return float("nan")
    order = np.argsort(-s, kind="stable")
    y, s = y[order], s[order]
    group_ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    tp = np.cumsum(y)[group_ends]
    precision = tp / (group_ends + 1)
    recall_gain = np.diff(np.r_[0.0, tp]) / positives
    return float((precision * recall_gain).sum())


def brier_score(actual: npt.ArrayLike, probability: npt.ArrayLike) -> float:
    y, p = _pair(actual, probability)
    _binary(y)
    return float(np.mean((p - y) ** 2))


def top_share_sum(values: npt.ArrayLike, score: npt.ArrayLike, share: float) -> float:
    """Expected sum of ``values`` over the top ``share`` of rows by score (a tied group cut pro rata)."""
    v, s = _pair(values, score)
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    k = share * v.size
    order = np.argsort(-s, kind="stable")
    v, s = v[order], s[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    sizes = np.diff(np.r_[starts, v.size])
    sums = np.add.reduceat(v, starts)
    taken = np.clip(k - starts, 0, sizes)  # rows each tied group contributes to the top k
    return float((sums * taken / sizes).sum())


def lift_at(actual: npt.ArrayLike, score: npt.ArrayLike, share: float = 0.1) -> float:
    """Positive rate in the top ``share`` by score over the overall positive rate."""
    y, s = _pair(actual, score)
    _binary(y)
    base_rate = y.mean()
    if base_rate == 0:
        return float("nan")
    return top_share_sum(y, s, share) / (share * y.size) / base_rate


@dataclass(frozen=True)
class CalibrationBin:
    bin: int
    rows: int
    mean_predicted: float
    observed_rate: float


def calibration_table(
    actual: npt.ArrayLike, probability: npt.ArrayLike, bins: int = 10
) -> list[CalibrationBin]:
    """Rows sorted by predicted probability, cut into ``bins`` equal-count bins (fewer if rows are few)."""
    y, p = _pair(actual, probability)
    _binary(y)
    order = np.argsort(p, kind="stable")
    chunks = [c for c in np.array_split(order, min(bins, y.size)) if c.size]
    return [
        CalibrationBin(i + 1, int(c.size), float(p[c].mean()), float(y[c].mean()))
        for i, c in enumerate(chunks)
    ]


def spearman(actual: npt.ArrayLike, predicted: npt.ArrayLike) -> float:
    """Pearson correlation of the average ranks."""
    y, s = _pair(actual, predicted)
    ry, rs = rankdata(y), rankdata(s)
    ry, rs = ry - ry.mean(), rs - rs.mean()
    denominator = np.sqrt((ry**2).sum() * (rs**2).sum())
    return float((ry * rs).sum() / denominator) if denominator > 0 else float("nan")


def _gini(actual: FloatArray, score: FloatArray) -> float:
    # Area between the cumulative-gains curve (share of actual value captured by the top x of rows, rows
    # ordered by score) and the diagonal, times 2. Inside a tied group the curve is the straight line
    # random order gives in expectation.
    order = np.argsort(-score, kind="stable")
    a, s = actual[order], score[order]
    group_ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    captured = np.r_[0.0, np.cumsum(a)[group_ends] / a.sum()]
    population = np.r_[0.0, (group_ends + 1) / a.size]
    area = float(np.sum(np.diff(population) * (captured[1:] + captured[:-1]) / 2))
    return 2 * (area - 0.5)


def normalized_gini(actual: npt.ArrayLike, predicted: npt.ArrayLike) -> float:
    """Gini of the prediction's ordering over the Gini of the perfect ordering (1 = perfect, 0 = random)."""
    y, s = _pair(actual, predicted)
    if (y < 0).any():
        raise ValueError("normalized Gini needs actual values >= 0")
    if y.sum() == 0:
        return float("nan")
    best = _gini(y, y)
    return _gini(y, s) / best if best > 0 else float("nan")


def top_share_capture(actual: npt.ArrayLike, predicted: npt.ArrayLike, share: float = 0.2) -> float:
    """Share of the actual total held by the top ``share`` of rows by prediction."""
    y, s = _pair(actual, predicted)
    total = y.sum()
    return top_share_sum(y, s, share) / total if total > 0 else float("nan")


@dataclass(frozen=True)
class DecileRow:
    decile: int  # 1 = highest predictions
    rows: int
    mean_predicted: float
    mean_actual: float


def decile_table(actual: npt.ArrayLike, predicted: npt.ArrayLike, deciles: int = 10) -> list[DecileRow]:
    """Rows sorted by prediction (highest first) in equal-count groups, predicted vs actual mean per group."""
    y, s = _pair(actual, predicted)
    order = np.argsort(-s, kind="stable")
    chunks = [c for c in np.array_split(order, min(deciles, y.size)) if c.size]
    return [
        DecileRow(i + 1, int(c.size), float(s[c].mean()), float(y[c].mean())) for i, c in enumerate(chunks)
    ]


def decile_mape(actual: npt.ArrayLike, predicted: npt.ArrayLike) -> float:
    """Mean over deciles of |predicted - actual| / actual, on decile means; deciles with no actual skipped."""
    errors = [
        abs(row.mean_predicted - row.mean_actual) / row.mean_actual
        for row in decile_table(actual, predicted)
        if row.mean_actual > 0
    ]
    return float(np.mean(errors)) if errors else float("nan")


def rmse(actual: npt.ArrayLike, predicted: npt.ArrayLike) -> float:
    y, s = _pair(actual, predicted)
    return float(np.sqrt(np.mean((s - y) ** 2)))


@dataclass(frozen=True)
class ChurnMetrics:
    base_rate: float  # share of churners in the window
    auc: float
    pr_auc: float
    brier: float
    lift_at_10: float
    calibration: tuple[CalibrationBin, ...]

    @property
    def lift_at_10_ceiling(self) -> float:
        """The best possible lift at 10%: every row in the top 10% a churner."""
        return min(10.0, 1.0 / self.base_rate) if self.base_rate > 0 else float("nan")

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class LtvMetrics:
    spearman: float
    normalized_gini: float
    top_20_capture: float
    decile_mape: float
    rmse: float
    predicted_total: float
    actual_total: float

    @property
    def total_ratio(self) -> float:
        """Predicted over actual total: 1.0 is a calibrated total."""
        return self.predicted_total / self.actual_total if self.actual_total > 0 else float("nan")

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "total_ratio": self.total_ratio}


def churn_metrics(actual: npt.ArrayLike, probability: npt.ArrayLike) -> ChurnMetrics:
    return ChurnMetrics(
        base_rate=float(np.mean(actual)),
        auc=roc_auc(actual, probability),
        pr_auc=average_precision(actual, probability),
        brier=brier_score(actual, probability),
        lift_at_10=lift_at(actual, probability, 0.1),
        calibration=tuple(calibration_table(actual, probability)),
    )


def ltv_metrics(actual: npt.ArrayLike, predicted: npt.ArrayLike) -> LtvMetrics:
    y, s = _pair(actual, predicted)
    return LtvMetrics(
        spearman=spearman(y, s),
        normalized_gini=normalized_gini(y, s),
        top_20_capture=top_share_capture(y, s, 0.2),
        decile_mape=decile_mape(y, s),
        rmse=rmse(y, s),
        predicted_total=float(s.sum()),
        actual_total=float(y.sum()),
    )
