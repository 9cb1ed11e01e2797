"""The synthetic benchmark's sampling table: its dataset list, its noise measure and its summary."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import bench_ml
from bench import datasets as bench_datasets
from ml.blend import TARGET_METRICS
from ml.frames import ExampleFrame
from ml.metrics import normalized_gini, roc_auc
from ml.training import CHURN, LTV


def test_synthetic_specs_expands_seed_ranges_and_drops_repeats(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_ML_SYNTHETIC", "20000:42-44, 100000:42,20000:43,20000:42-43:1095")
    assert bench_ml.synthetic_specs() == [
        (20_000, 42, None), (20_000, 43, None), (20_000, 44, None), (100_000, 42, None),
        (20_000, 42, 1095), (20_000, 43, 1095),
    ]  # fmt: skip


def test_synthetic_specs_is_empty_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENCH_ML_SYNTHETIC", raising=False)
    assert bench_ml.synthetic_specs() == []


@pytest.mark.parametrize("spec", ["20000", "20000:x", "20k:42", "20000:42-", "20000:42:", "20000:42:1y"])
def test_synthetic_specs_rejects_malformed_items(monkeypatch: pytest.MonkeyPatch, spec: str) -> None:
    monkeypatch.setenv("BENCH_ML_SYNTHETIC", spec)
    with pytest.raises(SystemExit, match="BENCH_ML_SYNTHETIC"):
        bench_ml.synthetic_specs()


def test_the_demo_size_and_seed_is_the_demo_itself() -> None:
    assert bench_ml.synthetic_dataset(20_000, 42) is bench_ml.DEMO
    assert bench_ml.DEMO.config() == bench_ml.demo_config()


def test_a_dataset_with_another_email_history_is_generated_with_it(tmp_path: Path) -> None:
    dataset = bench_ml.SyntheticDataset(20_000, 42, tmp_path / "raw", tmp_path / "ml.duckdb", 1095)
    assert dataset.config().email_history_days == 1095
    # Nothing else differs from the demo's configuration.
    default = bench_ml.demo_config()
    assert (
        dataclasses.replace(dataset.config(), email_history_days=default.email_history_days, out=default.out)
        == default
    )
    assert bench_datasets.dataset_dir(20_000, 42, 1095).name == "n20000-seed42-email1095"
    command = bench_datasets.generate_command(20_000, tmp_path, 42, 1095)
    assert command[-2:] == ["--email-history-days", "1095"]
    assert "--email-history-days" not in bench_datasets.generate_command(20_000, tmp_path, 42)


def test_bootstrap_sd_is_zero_for_the_reference_itself_and_grows_with_fewer_people() -> None:
    rng = np.random.default_rng(1)
    value = rng.gamma(0.5, 100.0, 4_000) * (rng.random(4_000) < 0.4)
    reference = value + rng.normal(0, 30, value.size)
    model = reference + rng.normal(0, 60, value.size)
    assert bench_ml.bootstrap_ratio_sd(value, reference, reference, normalized_gini) == 0.0
    many = bench_ml.bootstrap_ratio_sd(value, model, reference, normalized_gini)
    few = bench_ml.bootstrap_ratio_sd(value[:400], model[:400], reference[:400], normalized_gini)
    assert 0.0 < many < few
    churned = (value == 0).astype(np.float64)
    assert bench_ml.bootstrap_ratio_sd(churned, -model, -reference, roc_auc) > 0.0


def _holdout(people: int = 3_000, seed: int = 2) -> bench_ml.Holdout:
    """A holdout where 'good' scores carry the outcome plus noise, 'noisy' scores much more noise, and
    'same' is the model's own prediction under another name."""
    rng = np.random.default_rng(seed)
    spend = np.round(rng.gamma(0.5, 100.0, people) * (rng.random(people) < 0.4), 2)
    churned = (spend == 0).astype(np.float64)
    good = spend + rng.normal(0, 40, people)
    noisy = spend + rng.normal(0, 400, people)
    return bench_ml.Holdout(
        churned=churned,
        spend=spend,
        one_time=rng.random(people) < 0.5,
        predictions={
            CHURN: {"xgboost": -good, "noisy": -noisy, "same": -good},
            LTV: {"xgboost": good, "noisy": noisy, "same": good.copy()},
        },
    )


def test_paired_bootstrap_signs_margins_so_that_positive_is_the_model_ahead() -> None:
    comparisons = bench_ml.paired_bootstrap(_holdout(), resamples=60)
    by_pair = {(c.metric, c.baseline): c for c in comparisons}
    # Every target comparison against every baseline, once.
    assert len(comparisons) == 2 * len(TARGET_METRICS[CHURN]) + 2 * len(TARGET_METRICS[LTV])
    for metric, _ in (*TARGET_METRICS[CHURN], *TARGET_METRICS[LTV]):
        ahead = by_pair[(metric, "noisy")]
        # Lower-is-better metrics (decile MAPE, RMSE) too: the better model has a positive margin.
        assert ahead.margin > 0 and ahead.low > 0 and ahead.win_share == 1.0, ahead
        assert ahead.low <= ahead.high
        tie = by_pair[(metric, "same")]
        # The model against itself: no margin on any resample, and never strictly ahead.
        assert tie.margin == tie.low == tie.high == 0.0 and tie.win_share == 0.0, tie


def test_paired_bootstrap_is_reproducible_and_resamples_the_people() -> None:
    holdout = _holdout()
    first = bench_ml.paired_bootstrap(holdout, resamples=30)
    assert first == bench_ml.paired_bootstrap(holdout, resamples=30)
    # Another seed draws other resamples: the interval moves, the margin on the holdout itself does not.
    other = bench_ml.paired_bootstrap(holdout, resamples=30, seed=1)
    assert [c.margin for c in other] == [c.margin for c in first]
    assert [(c.low, c.high) for c in other] != [(c.low, c.high) for c in first]


def test_comparisons_text_says_whether_a_lost_comparison_is_within_the_noise() -> None:
    def comparison(metric: str, margin: float, low: float, high: float, wins: float) -> bench_ml.Comparison:
        return bench_ml.Comparison(LTV, metric, "pareto_nbd", margin, low, high, wins)

    text = bench_ml.comparisons_text(
        [
            comparison("normalized_gini", 0.03, 0.01, 0.05, 0.99),
            comparison("top_20_capture", -0.0007, -0.01, 0.008, 0.45),
            comparison("spearman", -0.02, -0.03, -0.01, 0.0),
        ]
    )
    assert "| norm. Gini | pareto_nbd | +0.0300 | [+0.0100, +0.0500] | 99% |" in text
    assert "top-20% capture vs pareto_nbd is within the noise of the sample (XGBoost ahead in 45%" in text
    assert "LTV Spearman vs pareto_nbd is lost beyond the noise of the sample (XGBoost ahead in 0%" in text
    assert "norm. Gini vs pareto_nbd is" not in text  # won: not listed among the lost
    assert "Of the 1 comparisons won on the holdout, 1 are won in at least 95% of the resamples." in text


def _ratios(customers: int, seed: int, gini: float, email_days: int = 182) -> bench_ml.SyntheticRatios:
    return bench_ml.SyntheticRatios(
        customers=customers, seed=seed, email_history_days=email_days, buyers=10, training_rows=100,
        auc=0.96, auc_bootstrap_sd=0.001,
        gini_net=gini, gini_net_bootstrap_sd=0.002, gini_billed=gini, population_auc=0.95,
        population_gini_net=0.92, production_auc=0.955, production_gini_net=gini - 0.004,
        engagement_gini_net=gini + 0.02, full_information_auc=0.975, full_information_gini_net=gini + 0.005,
        ltv_total_ratio=1 + seed / 100, production_ltv_total_ratio=1.1, oracle_ltv_total_ratio=1.0,
        wall_seconds=1.0, cpu_seconds=1.0,
    )  # fmt: skip


def test_sampling_text_summarizes_each_size_over_its_seeds() -> None:
    text = bench_ml.sampling_text(
        [_ratios(20_000, 42, 0.94), _ratios(20_000, 43, 0.96), _ratios(100_000, 42, 0.955)]
    )
    assert (
        "| 20,000 | 182 d | 2 | 0.9600 ± 0.0000 (0.9600-0.9600) | 0.9500 ± 0.0141 (0.9400-0.9600) |" in text
    )
    assert text.rstrip().endswith(
        "| 100,000 | 182 d | 1 | 0.9600 | 0.9550 | 0.9200 | 0.0350 | 1 of 1 | 0.9510 | 1 of 1 | 0.9750 "
        "| 0.9600 | -0.0050 | 1 of 1 | 1.4200 | 1.1000 |"
    )
    # The production run's Gini ratios over the two 20k seeds: 0.936 and 0.956, one of them >= 0.95.
    assert "| 0.9460 ± 0.0141 (0.9360-0.9560) | 1 of 2 |" in text
    assert "| 20,000 | 182 d | 43 | 10 | 100 | 0.9600 (0.0010) | 0.9600 (0.0020) |" in text
    # The probe with the true engagement, per dataset and over the 20k seeds.
    assert "| 0.9560 | 0.9800 | 0.9750 | 0.9650 | 1.430 | 1.100 | 1.000 | 1 s | 1 s |" in text
    # The calibration of the LTV totals over the 20k seeds: 1.42 and 1.43.
    assert "| 1.4250 ± 0.0071 (1.4200-1.4300) | 1.1000 ± 0.0000 (1.1000-1.1000) |" in text
    # The full-information reference over the 20k seeds: 0.945 and 0.965, one of them reaching 0.95.
    assert "| 0.9550 ± 0.0141 (0.9450-0.9650) | -0.0050 ± 0.0000 (-0.0050--0.0050) | 1 of 2 |" in text
    assert "| 0.9460 ± 0.0141 (0.9360-0.9560) | 1 of 2 | 0.9700 ± 0.0141 (0.9600-0.9800) |" in text


def test_sampling_text_summarizes_each_email_history_apart() -> None:
    text = bench_ml.sampling_text([_ratios(20_000, 42, 0.94), _ratios(20_000, 42, 0.955, email_days=1095)])
    assert (
        "| 20,000 | 182 d | 1 | 0.9600 | 0.9400 | 0.9200 | 0.0200 | 0 of 1 | 0.9360 | 0 of 1 | 0.9600 "
        "| 0.9450 | -0.0050 | 0 of 1 |" in text
    )
    assert (
        "| 20,000 | 1095 d | 1 | 0.9600 | 0.9550 | 0.9200 | 0.0350 | 1 of 1 | 0.9510 | 1 of 1 | 0.9750 "
        "| 0.9600 | -0.0050 | 1 of 1 |" in text
    )


def test_the_true_engagement_probe_adds_each_persons_logit_and_leaves_the_unmatched_missing() -> None:
    rows = pd.DataFrame({"person_id": ["a", "b", "a", "c"], "f_frequency": [1.0, 2.0, 3.0, 4.0]})
    frame = ExampleFrame("ml.ml_training_examples", rows, ("f_frequency",), 180)
    truth = pd.DataFrame({"person_id": ["a", "b"], "email_engagement": [0.5, 0.8]})
    probed = bench_ml.with_true_engagement(frame, truth)
    assert probed.features == ("f_frequency", bench_ml.TRUE_ENGAGEMENT)
    logits = probed.rows[bench_ml.TRUE_ENGAGEMENT].to_numpy()
    np.testing.assert_allclose(logits[:3], [0.0, np.log(4.0), 0.0], atol=1e-6)
    assert np.isnan(logits[3])  # "c" has no match in the truth
    assert bench_ml.TRUE_ENGAGEMENT not in frame.rows  # the frame the real models train on is untouched
