"""The training-settings grid behind TrainingConfig's defaults: every variant's validation AND truth figures.

Each variant trains both models exactly as the synthetic bench does (all features, BG/NBD base margin,
`bench_ml._train_score`) on the demo warehouse copy with the 180-day sets. Two figures per model:

- validation: the out-of-time predictions on the latest training cutoff (no ground truth), which is
  what a variant is chosen on;
- truth: the refit's scores at the as-of measured on the generator's next 180 days, as a ratio to the
  oracle (net revenue for LTV), printed so that a reader can see the choice did not look at it.

Each variant runs with several seeds (the row and column subsampling), so a validation difference can be
compared with the seed-to-seed spread. Usage: `python -m bench.tune_synthetic [WORK_DIR]` (WORK_DIR keeps
the warehouse copy between runs).
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np

from bench import bench_ml
from ml.frames import load_scoring_features, load_training_examples
from ml.metrics import churn_metrics, ltv_metrics
from ml.stacking import stack_btyd
from ml.training import CHURN, LTV, TrainingConfig

SEEDS = (0, 1, 2)
# The settings before this grid; each variant changes them as its name says. "depth 3" was chosen and is
# TrainingConfig's defaults (ml/training.py says why).
BASE = TrainingConfig(max_depth=4)
VARIANTS: dict[str, TrainingConfig] = {
    "depth 4 (before)": BASE,
    "eta 0.05": dataclasses.replace(BASE, learning_rate=0.05, max_rounds=1000),
    "eta 0.03, patience 50": dataclasses.replace(
        BASE, learning_rate=0.03, max_rounds=2000, early_stopping_rounds=50
    ),
    "depth 3": dataclasses.replace(BASE, max_depth=3),
    "depth 5": dataclasses.replace(BASE, max_depth=5),
    "depth 6": dataclasses.replace(BASE, max_depth=6),
    "min_child_weight 20": dataclasses.replace(BASE, min_child_weight=20.0),
    "min_child_weight 150": dataclasses.replace(BASE, min_child_weight=150.0),
    "tweedie 1.1": dataclasses.replace(BASE, tweedie_variance_power=1.1),
    "tweedie 1.35": dataclasses.replace(BASE, tweedie_variance_power=1.35),
    "subsample 0.6, colsample 0.6": dataclasses.replace(BASE, subsample=0.6, colsample_bytree=0.6),
    "4 parallel trees": dataclasses.replace(BASE, parallel_trees=4),
    "patience 50": dataclasses.replace(BASE, early_stopping_rounds=50),
    # Second stage: the first stage's directions that raised the validation LTV Gini, combined.
    "eta 0.05, depth 3": dataclasses.replace(BASE, learning_rate=0.05, max_rounds=1000, max_depth=3),
    "eta 0.05, depth 3, tweedie 1.1, subsample/colsample 0.6": dataclasses.replace(
        BASE,
        learning_rate=0.05,
        max_rounds=1000,
        max_depth=3,
        tweedie_variance_power=1.1,
        subsample=0.6,
        colsample_bytree=0.6,
    ),
    "eta 0.05, 4 parallel trees": dataclasses.replace(
        BASE, learning_rate=0.05, max_rounds=1000, parallel_trees=4
    ),
}


def main(work: Path, names: list[str]) -> None:
    settings_path = work / "demo.duckdb"
    if not settings_path.exists():
        bench_ml._demo_warehouse(work)
    with duckdb.connect(str(settings_path), read_only=True) as warehouse:
        examples, scoring = load_training_examples(warehouse), load_scoring_features(warehouse)
        truth = bench_ml._truth_by_person(warehouse)
    examples = stack_btyd(examples, bench_ml.DEMO_HORIZON)
    scoring = stack_btyd(scoring, bench_ml.DEMO_HORIZON)

    rows, matched, churned = bench_ml.truth_rows(scoring, truth)
    net = rows["future_net_value"].to_numpy(dtype=np.float64)
    oracle_churn, oracle_purchases = bench_ml.oracle(rows, bench_ml.DEMO_HORIZON)
    oracle_auc = churn_metrics(churned, oracle_churn).auc
    oracle_gini = ltv_metrics(net, oracle_purchases * bench_ml.expected_order_net_usd(rows)).normalized_gini

    print("| variant | seeds | validation churn AUC | validation LTV Gini | truth AUC / oracle | "
          "truth Gini / oracle | rounds churn, LTV | train + score s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        figures = []
        for seed in SEEDS:
            config = dataclasses.replace(VARIANTS[name], seed=seed)
            started = time.perf_counter()
            scores, validation, rounds = bench_ml._train_score(examples, scoring, examples.features, config)
            seconds = time.perf_counter() - started
            figures.append(
                (
                    validation[CHURN],
                    validation[LTV],
                    churn_metrics(churned, scores[CHURN][matched]).auc / oracle_auc,
                    ltv_metrics(net, scores[LTV][matched]).normalized_gini / oracle_gini,
                    rounds[CHURN],
                    rounds[LTV],
                    seconds,
                )
            )
        table = np.array(figures)
        mean, spread = table.mean(axis=0), table.max(axis=0) - table.min(axis=0)
        cells = [f"{mean[i]:.4f} ±{spread[i] / 2:.4f}" for i in range(4)]
        print(f"| {name} | {len(SEEDS)} | " + " | ".join(cells)
              + f" | {mean[4]:.0f}, {mean[5]:.0f} | {mean[6]:.1f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if arguments and arguments[0] not in VARIANTS:
        directory, chosen = Path(arguments[0]), arguments[1:]
        directory.mkdir(parents=True, exist_ok=True)
        main(directory, chosen or list(VARIANTS))
    else:
        with tempfile.TemporaryDirectory(prefix="tune-synthetic-") as scratch:
            main(Path(scratch), arguments or list(VARIANTS))
