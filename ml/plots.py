"""Validation charts as PNG bytes (matplotlib's Agg backend: no display needed), e.g. for Dagster metadata."""

from __future__ import annotations

import io
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")  # before pyplot is imported: no GUI backend, works on servers and in threads

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ml.metrics import decile_table, roc_auc, roc_curve  # noqa: E402

_SHARES = np.linspace(0.01, 1.0, 100)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def roc_png(actual: np.ndarray, scores: Mapping[str, np.ndarray], title: str = "Churn ROC") -> bytes:
    """One ROC curve per scorer (the model and each baseline), AUC in the legend."""
    figure, axes = plt.subplots(figsize=(5.5, 5))
    for name, score in scores.items():
        fpr, tpr = roc_curve(actual, score)
        axes.plot(fpr, tpr, label=f"{name} (AUC {roc_auc(actual, score):.3f})")
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    axes.legend(loc="lower right", fontsize="small")
    return _png(figure)


def lift_png(actual: np.ndarray, scores: Mapping[str, np.ndarray], title: str = "Cumulative lift") -> bytes:
    """Lift of the top x% by score over the base rate (or value share for spend), per scorer."""
    figure, axes = plt.subplots(figsize=(6, 4.5))
    values = np.asarray(actual, dtype=np.float64)
    total = float(values.sum())
    # One sort per scorer (ties in plain sort order: fine for a picture; the metrics treat ties exactly).
    top_k = np.maximum(np.ceil(_SHARES * values.size).astype(int), 1)
    for name, score in scores.items():
        captured = np.cumsum(values[np.argsort(-np.asarray(score), kind="stable")])[top_k - 1]
        lift = captured / total / (top_k / values.size) if total else np.full(top_k.shape, np.nan)
        axes.plot(_SHARES * 100, lift, label=name)
    axes.axhline(1.0, linestyle=":", color="grey")
    axes.set(xlabel="top % of customers by score", ylabel="lift over random", title=title)
    axes.legend(fontsize="small")
    return _png(figure)


def decile_png(
    actual: np.ndarray, predicted: np.ndarray, title: str = "Predicted vs actual by decile"
) -> bytes:
    """Mean predicted and mean actual per decile of the prediction (decile 1 = highest)."""
    rows = decile_table(actual, predicted)
    deciles = np.array([row.decile for row in rows])
    figure, axes = plt.subplots(figsize=(6, 4.5))
    axes.bar(deciles - 0.2, [row.mean_predicted for row in rows], width=0.4, label="predicted")
    axes.bar(deciles + 0.2, [row.mean_actual for row in rows], width=0.4, label="actual")
    axes.set(xlabel="decile of prediction (1 = highest)", ylabel="mean per customer", title=title)
    axes.set_xticks(deciles)
    axes.legend()
    return _png(figure)
