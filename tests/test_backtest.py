"""`personalize backtest` on 300 CDNOW customers: real dbt builds, real XGBoost, real BTYD fits.

Two backtests share the module: one on the full file (orders after the cutoff give the truth), one on the
orders known at the cutoff plus a --truth file. Their scores must be identical (orders after the cutoff
never change the scores), and their metrics too (the two truth sources agree).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.baselines import BASELINES
from ml.blend import BASE_MARGINS, choose_blend, target_metrics, unwon_comparisons
from ml.frames import ExampleFrame
from ml.windows import short_window, unseen_features
from personalize.backtest import BacktestConfig, BacktestError, _check_clean_orders, training_plan
from personalize.cli import main
from tests.conftest import SHOP_ORDERS_HEADER, write_csv
from tests.ml.cdnow import CDNOW_SAMPLE

CUTOFF = "1997-09-30"
HORIZON = "273"
CUSTOMERS = 300
# An order placed before the cutoff that is refunded after it: the refund version must stay invisible.
LATE_REFUND_ORDER = "cdnow-0"
# Refunds that begin after the main (90-day) window's last cutoff, 1997-07-02, and before the short (60-day)
# window's, 1997-08-01: the refunded-orders feature is 0 on every main training row and varies among the
# people scored, so the backtest trains the short window too.
RECENT_REFUNDS = 12
RECENT_REFUND_AT = "1997-07-20T12:00:00Z"


def _cdnow_orders(customers: int) -> list[list[str]]:
    lines = pd.read_csv(
        CDNOW_SAMPLE, sep=r"\s+", header=None, names=["master_id", "customer", "date", "cds", "dollars"],
        dtype=str,
    )  # fmt: skip
    lines = lines[lines["customer"].astype(int) <= customers].reset_index(drop=True)
    rows = []
    for i, line in lines.iterrows():
        at = pd.Timestamp(line["date"]).strftime("%Y-%m-%dT12:00:00Z")
        dollars = line["dollars"]
        rows.append([f"cdnow-{i}", str(int(line["customer"])), "", "shipped", "USD", dollars, "0", "0", "0",
                     dollars, at, at])  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def backtests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("backtest")
    rows = _cdnow_orders(CUSTOMERS)
    before = [r for r in rows if r[10] < "1997-10-01"]
    late_refund = next(r for r in before if r[0] == LATE_REFUND_ORDER).copy()
    late_refund[3], late_refund[11] = "refunded", "1997-10-15T09:00:00+02:00"
    recent_refunds = [
        [*r[:3], "refunded", *r[4:11], RECENT_REFUND_AT]
        for r in before
        if "1997-03-01" <= r[10] < "1997-07-01" and r[0] != LATE_REFUND_ORDER
    ][:RECENT_REFUNDS]
    full = write_csv(root / "full.csv", SHOP_ORDERS_HEADER, [*rows, *recent_refunds, late_refund])
    known = write_csv(root / "known.csv", SHOP_ORDERS_HEADER, [*before, *recent_refunds])

    out_full, out_known = root / "out_full", root / "out_known"
    assert main(["backtest", "--orders", str(full), "--cutoff", CUTOFF, "--horizon-days", HORIZON,
                 "--out", str(out_full)]) == 0  # fmt: skip
    # The truth file, in the documented format, from the same later orders the first run saw.
    later = [r for r in rows if "1997-10-01" <= r[10] < "1998-07-01"]
    truth: dict[str, list[float]] = {}
    for r in later:
        purchases, spend = truth.setdefault(r[1], [0.0, 0.0])
        truth[r[1]] = [purchases + 1, spend + float(r[5])]
    truth_file = write_csv(
        root / "truth.csv",
        ("customer_id", "purchases", "spend"),
        [[c, int(p), s] for c, (p, s) in truth.items()],
    )
    assert main(["backtest", "--orders", str(known), "--cutoff", CUTOFF, "--horizon-days", HORIZON,
                 "--out", str(out_known), "--truth", str(truth_file)]) == 0  # fmt: skip
    return {"full": out_full, "known": out_known}


def test_scores_cover_every_customer_known_at_the_cutoff(backtests: dict[str, Path]) -> None:
    scores = pd.read_csv(backtests["full"] / "scores.csv", dtype={"customer_id": str})
    assert list(scores.columns) == ["customer_id", "churn_probability", "predicted_ltv"]
    # CDNOW customers 1..300 all first bought in Q1 1997, so all are known at the cutoff.
    assert sorted(scores["customer_id"].astype(int)) == list(range(1, CUSTOMERS + 1))
    assert scores["churn_probability"].between(0, 1).all()
    assert (scores["predicted_ltv"] >= 0).all()
    assert scores["churn_probability"].nunique() > 10 and scores["predicted_ltv"].nunique() > 10


def test_orders_after_the_cutoff_never_change_the_scores(backtests: dict[str, Path]) -> None:
    with_later = pd.read_csv(backtests["full"] / "scores.csv", dtype={"customer_id": str})
    without_later = pd.read_csv(backtests["known"] / "scores.csv", dtype={"customer_id": str})
    pd.testing.assert_frame_equal(with_later, without_later, check_exact=True)
    landed = pd.read_csv(backtests["full"] / "raw" / "shop_orders" / "orders.csv", dtype=str)
    assert not landed["updated_at"].str.startswith("1997-10").any()
    assert (landed["status"] == "refunded").sum() == RECENT_REFUNDS
    assert LATE_REFUND_ORDER not in set(landed.loc[landed["status"] == "refunded", "order_id"])


def test_metrics_put_models_and_baselines_side_by_side(backtests: dict[str, Path]) -> None:
    metrics = json.loads((backtests["full"] / "metrics.json").read_text())
    assert metrics["cutoff"] == CUTOFF and metrics["horizon_days"] == int(HORIZON)
    # 273 days do not fit before the cutoff: a shorter window, mapped to the horizon with BG/NBD.
    assert metrics["training_horizon_days"] < int(HORIZON)
    assert metrics["horizon_mapping"] == "bgnbd_ratio"
    assert metrics["customers_scored"] == CUSTOMERS
    churn_names = {"auc", "pr_auc", "brier", "lift_at_10"}
    ltv_names = {"spearman", "normalized_gini", "top_20_capture", "decile_mape", "rmse", "total_ratio"}
    scorers = set(metrics["churn"]) | set(metrics["unavailable_baselines"])
    assert {"xgboost", *BASELINES} <= scorers
    for scorer, values in metrics["churn"].items():
        assert churn_names <= set(values), scorer
        assert 0.5 < values["auc"] <= 1.0, (scorer, values["auc"])
    for scorer, values in metrics["ltv"].items():
        assert ltv_names <= set(values), scorer
    # Every scored customer is evaluated; the actual total is the later orders' spend of the 300.
    actual = metrics["ltv"]["xgboost"]["actual_total"]
    later_spend = sum(float(r[5]) for r in _cdnow_orders(CUSTOMERS) if "1997-10-01" <= r[10] < "1998-07-01")
    assert actual == pytest.approx(later_spend)


def test_behaviour_newer_than_the_main_window_trains_a_short_window(backtests: dict[str, Path]) -> None:
    metrics = json.loads((backtests["full"] / "metrics.json").read_text())
    assert metrics["training_horizon_days"] == 90 and metrics["training_cutoffs"][-1] == "1997-07-02"
    # 60 days, its latest cutoff 60 days before the cutoff, one of its cutoffs on the main validation cutoff.
    assert metrics["short_training_horizon_days"] == 60
    assert metrics["short_training_cutoffs"][-1] == "1997-08-01"
    assert "1997-07-02" in metrics["short_training_cutoffs"]
    assert metrics["short_window_weight"] == 0.7
    with duckdb.connect(str(backtests["full"] / "warehouse.duckdb"), read_only=True) as warehouse:
        refunds = dict(
            warehouse.sql(
                "select horizon_days, max(f_refunded_orders) from ml.ml_training_examples group by 1"
            ).fetchall()
        )
    assert refunds[90] == 0 and refunds[60] >= 1


def test_the_short_window_is_used_only_for_features_the_main_window_never_saw() -> None:
    def frame(**columns: list[float]) -> ExampleFrame:
        rows = pd.DataFrame(columns)
        return ExampleFrame("t", rows, tuple(columns), 90)

    training = frame(f_old=[0, 1, 2], f_new=[0, 0, 0], f_never=[0, 0, 0], f_gone=[1, 2, 3])
    scoring = frame(f_old=[0, 1, 2], f_new=[0, 3, 0], f_never=[0, 0, 0], f_gone=[0, 0, 0])
    assert unseen_features(training, scoring) == ("f_new",)
    assert unseen_features(training, training) == ()
    # Missing is a value: a feature missing on every training row and present for some scored people.
    assert unseen_features(frame(f_x=[np.nan, np.nan]), frame(f_x=[np.nan, 1.0])) == ("f_x",)
    # Without unseen features the warehouse is never read.
    chosen, reason = short_window(None, training, training, 60, 273)  # type: ignore[arg-type]
    assert chosen is None and "every feature" in reason


def test_the_short_window_puts_a_cutoff_on_the_main_validation_cutoff() -> None:
    config = BacktestConfig(orders=Path("o.csv"), cutoff=date(1997, 9, 30), horizon_days=273, out=Path("out"))
    plan = training_plan(date(1997, 1, 1), config)
    assert (plan.horizon_days, plan.cutoff_count) == (90, 6)
    assert (plan.short_horizon_days, plan.short_cutoff_count) == (60, 7)
    assert plan.dbt_vars(config.cutoff)["ml_short_horizon_days"] == 60
    # An 80-day main window: d - s must be a multiple of the 30-day spacing, so 50 days.
    assert training_plan(date(1997, 1, 1), replace(config, training_horizon_days=80)).short_horizon_days == 50
    # Four short cutoffs leave too few clean ones before the main validation cutoff: no short window.
    cramped = training_plan(date(1997, 1, 1), replace(config, max_short_cutoffs=4))
    assert cramped.short_horizon_days is None
    assert cramped.dbt_vars(config.cutoff)["ml_short_horizon_days"] == 0
    # A 32-day main window leaves no short window of at least 30 days.
    late_start = training_plan(date(1997, 4, 1), config)
    assert late_start.horizon_days == 32 and late_start.short_horizon_days is None
    unasked = training_plan(date(1997, 1, 1), replace(config, short_training_horizon_days=None))
    assert unasked.short_horizon_days is None


def test_training_labels_hold_both_outcomes(backtests: dict[str, Path]) -> None:
    # Every CDNOW order is completed; DuckDB 2.0.0 once folded the label's `sum(case ...) > 0` to false for
    # such data and every training example came out churned.
    with duckdb.connect(str(backtests["full"] / "warehouse.duckdb"), read_only=True) as warehouse:
        rows = warehouse.sql(
            "select label_is_churned, count(*), sum(label_net_spend) from ml.ml_training_examples group by 1"
        ).fetchall()
    by_label = {label: (count, spend) for label, count, spend in rows}
    assert set(by_label) == {0, 1}
    assert by_label[1][1] == 0 and by_label[0][1] > 0


def test_a_truth_file_gives_the_same_metrics_as_the_later_orders(backtests: dict[str, Path]) -> None:
    from_orders = json.loads((backtests["full"] / "metrics.json").read_text())
    from_file = json.loads((backtests["known"] / "metrics.json").read_text())
    for kind in ("churn", "ltv"):
        assert set(from_file[kind]) == set(from_orders[kind])
        for scorer, values in from_orders[kind].items():
            numbers = {k: v for k, v in values.items() if isinstance(v, float)}
            assert {k: from_file[kind][scorer][k] for k in numbers} == pytest.approx(numbers), (kind, scorer)


def test_a_missing_column_is_named_with_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    header = [c for c in SHOP_ORDERS_HEADER if c != "updated_at"]
    row = ["o1", "1", "", "paid", "USD", "1", "0", "0", "0", "1", "1997-01-01T00:00:00Z"]
    orders = write_csv(tmp_path / "orders.csv", header, [row])
    code = main(["backtest", "--orders", str(orders), "--cutoff", CUTOFF, "--horizon-days", "30",
                 "--out", str(tmp_path / "out")])  # fmt: skip
    assert code == 2
    error = capsys.readouterr().err
    assert str(orders) in error and "updated_at" in error


def test_a_file_whose_every_order_is_quarantined_stops_with_the_reasons(tmp_path: Path) -> None:
    # Staging's verdicts as `personalize backtest` reads them after its dbt build, e.g. amounts as "$29.33".
    config = BacktestConfig(
        orders=tmp_path / "orders.csv", cutoff=date(1997, 9, 30), horizon_days=30, out=tmp_path
    )
    messages: list[str] = []
    with duckdb.connect() as warehouse:
        warehouse.execute("create schema staging")
        warehouse.execute(
            "create table staging.base_shop__orders as select * from (values ('non_numeric_amount'), "
            "('non_numeric_amount'), ('unparseable_timestamp')) as rows (quarantine_reason)"
        )
        with pytest.raises(BacktestError) as stopped:
            _check_clean_orders(warehouse, config, messages.append)
        warehouse.execute("insert into staging.base_shop__orders values (null)")
        _check_clean_orders(warehouse, config, messages.append)

    assert str(config.orders) in str(stopped.value)
    assert "non_numeric_amount 2, unparseable_timestamp 1" in str(stopped.value)
    assert (
        messages[-1]
        == "staging: 1 clean order row(s); quarantined: non_numeric_amount 2, unparseable_timestamp 1"
    )


def test_a_bad_truth_value_names_the_customer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    orders = write_csv(tmp_path / "orders.csv", SHOP_ORDERS_HEADER, _cdnow_orders(5))
    truth = write_csv(tmp_path / "truth.csv", ("customer_id", "purchases", "spend"), [["3", "2", "-4"]])
    code = main(["backtest", "--orders", str(orders), "--cutoff", CUTOFF, "--horizon-days", HORIZON,
                 "--out", str(tmp_path / "out"), "--truth", str(truth)])  # fmt: skip
    assert code == 2
    error = capsys.readouterr().err
    assert "spend" in error and "'3'" in error and str(truth) in error


def test_metrics_record_the_blend_chosen_on_the_validation_cutoff(backtests: dict[str, Path]) -> None:
    metrics = json.loads((backtests["full"] / "metrics.json").read_text())
    # The blend is chosen on predictions of a fit whose label windows all end by the validation cutoff.
    window = timedelta(days=metrics["training_horizon_days"])
    validation = date.fromisoformat(metrics["training_cutoffs"][-1])
    fit = [date.fromisoformat(c) for c in metrics["validation_fit_cutoffs"]]
    assert len(fit) == 3 and all(c + window <= validation for c in fit)
    assert metrics["validation_fit_cutoffs"] == metrics["training_cutoffs"][:3]
    blend = metrics["blend"]
    assert set(blend) == {"churn", "ltv"}
    for kind, choice in blend.items():
        assert choice["baseline"] in ("bg_nbd", "pareto_nbd") and 0.0 <= choice["model_weight"] <= 1.0, kind
        assert choice["base_margin"] in BASE_MARGINS, kind
        assert choice["validation_metric"] == {"churn": "auc", "ltv": "normalized_gini"}[kind]
        # The chosen weight is never worse than the model alone on the window it was chosen on: fewer
        # comparisons with the validation baselines unwon, or as many and a metric at least as good.
        assert choice["validation_losses"] <= choice["model_only_losses"], kind
        if choice["validation_losses"] == choice["model_only_losses"]:
            assert choice["validation_score"] >= choice["model_only_score"], kind


def test_the_blend_takes_the_weight_that_validates_best() -> None:
    rng = np.random.default_rng(0)
    actual = (rng.random(2_000) < 0.5).astype(np.float64)
    noise = rng.random(2_000)
    # The model is noise in [0, 1) and the baseline separates the classes by 0.6: the blend ranks perfectly
    # while (1 - w) 0.6 > w, i.e. up to w = 0.3 on the grid, and ties keep the most model.
    trained = SimpleNamespace(validation_actual=actual, validation_predicted=noise)
    chosen = choose_blend("churn", trained, 0.2 + 0.6 * actual)  # type: ignore[arg-type]
    assert chosen.model_weight == 0.3 and chosen.validation_score == pytest.approx(1.0)
    assert chosen.model_only_score == pytest.approx(0.5, abs=0.05)
    # A model that knows the answer keeps its full weight (ties keep the model).
    trained = SimpleNamespace(validation_actual=actual, validation_predicted=actual)
    assert choose_blend("churn", trained, noise).model_weight == 1.0  # type: ignore[arg-type]
    np.testing.assert_allclose(chosen.apply(noise, actual), 0.3 * noise + 0.7 * actual)


def test_the_blend_wins_the_most_comparisons_with_the_validation_baselines() -> None:
    rng = np.random.default_rng(1)
    spend = np.where(rng.random(2_000) < 0.5, rng.gamma(2.0, 20.0, 2_000), 0.0)
    # The model orders people perfectly at five times the scale, the partner predicts nothing: every
    # weight above 0 orders alike, so the Gini ties and the metric alone keeps the model (w = 1). The
    # baseline is calibrated but orders imperfectly: the model alone beats it on Spearman, Gini and top-20%
    # capture and loses on decile MAPE and RMSE; a smaller weight wins all five.
    trained = SimpleNamespace(validation_actual=spend, validation_predicted=5.0 * spend)
    baseline = spend * np.exp(rng.normal(0.0, 0.3, spend.size))
    partner = np.zeros(spend.size)
    assert choose_blend("ltv", trained, partner).model_weight == 1.0  # type: ignore[arg-type]
    reference = {"baseline": target_metrics("ltv", spend, baseline)}
    chosen = choose_blend("ltv", trained, partner, reference)  # type: ignore[arg-type]
    assert chosen.model_only_losses == 2 and chosen.validation_losses == 0
    assert chosen.model_weight < 1.0 and chosen.validation_score == pytest.approx(chosen.model_only_score)


def test_unwon_comparisons_count_ties_and_undefined_metrics() -> None:
    mine = {"auc": 0.7, "lift_at_10": 1.2}
    assert unwon_comparisons("churn", mine, {"a": {"auc": 0.6, "lift_at_10": 1.1}}) == 0
    # A tie is not a win; a baseline's undefined metric is no comparison.
    assert unwon_comparisons("churn", mine, {"a": {"auc": 0.7, "lift_at_10": float("nan")}}) == 1
    ltv = {"spearman": 0.4, "normalized_gini": 0.6, "top_20_capture": 0.6, "decile_mape": 0.2, "rmse": 70.0}
    # Lower is better for the errors; the model's own undefined metric loses.
    worse = {"spearman": 0.3, "normalized_gini": 0.5, "top_20_capture": 0.5, "decile_mape": 0.1, "rmse": 80.0}
    assert unwon_comparisons("ltv", ltv, {"b": worse}) == 1
    assert unwon_comparisons("ltv", {**ltv, "spearman": float("nan")}, {"b": worse}) == 2


def test_the_benchmark_rebuilds_the_holdout_behind_the_reported_metrics(backtests: dict[str, Path]) -> None:
    # bench_ml's paired bootstrap resamples these arrays; backtest_holdout raises unless every model and
    # baseline metric they give equals metrics.json's.
    from bench.bench_ml import backtest_holdout

    out = backtests["full"]
    config = BacktestConfig(
        orders=out.parent / "full.csv", cutoff=date.fromisoformat(CUTOFF), horizon_days=int(HORIZON), out=out
    )
    scores = pd.read_csv(out / "scores.csv", dtype={"customer_id": str})
    metrics = json.loads((out / "metrics.json").read_text())
    holdout = backtest_holdout(config, scores, metrics)
    assert holdout is not None
    assert holdout.spend.size == len(scores)
    assert set(holdout.predictions["churn"]) == {"xgboost", *BASELINES}
    assert set(np.unique(holdout.churned)) == {0.0, 1.0}
    # A customer who bought in the holdout spent; one who did not, spent nothing.
    assert (holdout.spend[holdout.churned == 1.0] == 0).all() and (
        holdout.spend[holdout.churned == 0.0] > 0
    ).all()
    # Scores that are not the reported ones are caught.
    shuffled = scores.assign(predicted_ltv=scores["predicted_ltv"].to_numpy()[::-1])
    with pytest.raises(RuntimeError, match="ltv xgboost"):
        backtest_holdout(config, shuffled, metrics)
