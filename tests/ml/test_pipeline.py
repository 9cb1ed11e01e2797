"""The model run end to end on simulated tables in a real DuckDB file.

One module-scoped simulation; three registries exercise the promotion rule: a good candidate is promoted
and scores, a weak one afterwards is rejected while the previous model keeps scoring, and a registry that
never promoted anything scores with the best baseline.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pytest
from scipy.optimize import brentq

from ml import registry
from ml.frames import ExampleFrame, feature_matrix, load_scoring_features, load_training_examples
from ml.pipeline import (
    Candidate,
    ModelRunReport,
    load_training_sets,
    run_report,
    score_active,
    train_candidates,
    train_evaluate_score,
)
from ml.scoring import SCORE_TABLES, score
from ml.stacking import STACKED_FEATURES, StackingError, horizon_ratios, stack_btyd, with_btyd_features
from ml.training import TrainingConfig, predict, train_model
from ml.windows import average_scores, train_short_pair
from tests.ml.examples import simulate_tables, write_tables

# Small and quick; still enough trees to beat the baselines on the simulated engagement signal.
GOOD = TrainingConfig(max_rounds=60, early_stopping_rounds=10, learning_rate=0.2, max_depth=4)
# One stump with a tiny learning rate: it cannot beat anything.
WEAK = TrainingConfig(max_rounds=1, early_stopping_rounds=1, learning_rate=0.01, max_depth=1)
EXPECTED_SCHEMA = [
    ("person_id", "VARCHAR"),
    ("score", "DOUBLE"),
    ("model_version", "VARCHAR"),
    ("scored_at", "TIMESTAMP"),
    ("reasons", "VARCHAR"),
]


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(tmp_path_factory.mktemp("warehouse") / "warehouse.duckdb"))
    # The dbt defaults: six cutoffs 30 days apart, 90-day windows, so three train the validation fit.
    write_tables(connection, simulate_tables(customers=2000, cutoffs=6))
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def promoted_run(con, tmp_path_factory) -> tuple[Path, ModelRunReport, dict[str, Candidate]]:
    """The steps one by one (as Dagster runs them), then the report the one-call entry point builds."""
    model_dir = tmp_path_factory.mktemp("models")
    candidates = train_candidates(con, model_dir, config=GOOD)
    scores = score_active(con, model_dir)
    return model_dir, run_report(candidates, scores), candidates


def _table(con: duckdb.DuckDBPyConnection, kind: str) -> list[tuple]:
    return con.sql(f"select person_id, score, model_version, reasons from {SCORE_TABLES[kind]}").fetchall()


def test_a_candidate_that_beats_every_baseline_is_promoted_and_scores(con, promoted_run) -> None:
    model_dir, report, _ = promoted_run
    scoring_people = {row[0] for row in con.sql("select person_id from ml.ml_scoring_features").fetchall()}
    for kind, kind_report in report.kinds.items():
        assert kind_report.promoted, kind_report.reason
        assert registry.active_version(model_dir, kind) == kind_report.candidate_version
        assert kind_report.active_version == kind_report.candidate_version
        rows = _table(con, kind)
        assert {r[0] for r in rows} == scoring_people and len(rows) == len(scoring_people)
        assert {r[2] for r in rows} == {kind_report.candidate_version}
        for reasons in (json.loads(r[3]) for r in rows[:200]):
            assert len(reasons) == 3 and all(set(r) == {"feature", "contribution"} for r in reasons)
        scores = np.array([r[1] for r in rows])
        assert (scores >= 0).all()
        if kind == "churn":
            assert (scores <= 1).all()
    assert "PROMOTED" in "\n".join(report.summary_lines())


def test_score_tables_have_the_contract_schema(con, promoted_run) -> None:
    for table in SCORE_TABLES.values():
        assert (
            con.sql(f"describe {table}").fetchall()
            and [(name, kind) for name, kind, *_ in con.sql(f"describe {table}").fetchall()]
            == EXPECTED_SCHEMA
        )
        unique = con.sql(f"select count(*) = count(distinct person_id) from {table}").fetchall()[0][0]
        assert unique


def test_metadata_records_data_metrics_and_calibrated_ltv_total(con, promoted_run) -> None:
    model_dir, report, _ = promoted_run
    churn = registry.load_metadata(model_dir, "churn", report.kinds["churn"].candidate_version)
    assert churn.cutoffs[-1] == churn.validation_cutoff and len(churn.cutoffs) == 6
    # The validation fit learnt from the three cutoffs whose 90-day windows end by the validation cutoff.
    assert churn.validation_fit_cutoffs == churn.cutoffs[:3]
    # The dbt features, then each cutoff's BG/NBD + Gamma-Gamma view (ml.stacking), which the trees use.
    assert churn.horizon_days == 90 and churn.features[-9:] == [
        "btyd_frequency", "btyd_recency", "btyd_t", "btyd_monetary_value", *STACKED_FEATURES
    ]  # fmt: skip
    for kind, metadata in (("churn", churn), ("ltv", registry.load_metadata(
        model_dir, "ltv", report.kinds["ltv"].candidate_version
    ))):  # fmt: skip
        split_on = registry.load_booster(model_dir, kind, metadata.version).get_score(
            importance_type="weight"
        )
        assert set(split_on) & set(STACKED_FEATURES), kind
    assert set(churn.metrics) == {
        "xgboost",
        "bg_nbd",
        "pareto_nbd",
        "recency_heuristic",
        "frequency_heuristic",
    }
    assert len(churn.training_fingerprint) == 64 and 1 <= churn.rounds <= GOOD.max_rounds
    ltv = registry.load_metadata(model_dir, "ltv", report.kinds["ltv"].candidate_version)
    assert ltv.metrics["xgboost"]["total_ratio"] == pytest.approx(1.0)
    assert ltv.calibration_scale > 0
    assert set(ltv.metrics) == {"xgboost", "bg_nbd", "pareto_nbd", "frequency_heuristic"}


def test_scoring_an_unstacked_frame_fits_the_btyd_features_itself(con, promoted_run) -> None:
    model_dir, report, _ = promoted_run
    for kind in report.kinds:
        scored = score(load_scoring_features(con), model_dir, kind).frame.set_index("person_id")["score"]
        table = dict((person, value) for person, value, *_ in _table(con, kind))
        assert len(scored) == len(table)
        np.testing.assert_allclose(scored.to_numpy(), [table[p] for p in scored.index], rtol=1e-9)


def test_a_cutoff_too_thin_for_bg_nbd_keeps_missing_btyd_features_and_says_so(con) -> None:
    examples = load_training_examples(con)
    rows = examples.rows.copy()
    first = rows["cutoff_date"] == rows["cutoff_date"].min()
    rows.loc[first, "btyd_frequency"] = 0.0  # nobody has bought twice yet: BG/NBD has nothing to fit
    thin = ExampleFrame(examples.table, rows, examples.features, examples.horizon_days)
    with pytest.raises(StackingError, match=f"cutoff {rows['cutoff_date'].min():%Y-%m-%d}"):
        stack_btyd(thin, thin.horizon_days)
    said: list[str] = []
    stacked = with_btyd_features(thin, said.append)
    assert len(said) == 1 and "BTYD features missing" in said[0]
    is_first = (stacked.rows["cutoff_date"] == rows["cutoff_date"].min()).to_numpy()
    values = stacked.rows[list(STACKED_FEATURES)]
    assert values.loc[is_first].isna().all().all() and values.loc[~is_first].notna().all().all()


def test_a_weaker_candidate_is_not_promoted_and_the_previous_model_keeps_scoring(con, promoted_run) -> None:
    model_dir, first, _ = promoted_run
    candidates = train_candidates(con, model_dir, config=WEAK)
    scores = score_active(con, model_dir)
    for kind, candidate in candidates.items():
        assert not candidate.decision.promoted
        stored = registry.load_metadata(model_dir, kind, candidate.metadata.version)
        assert not stored.promoted and stored.reason.startswith("does not beat every baseline")
        previous = first.kinds[kind].candidate_version
        assert registry.active_version(model_dir, kind) == previous
        assert scores[kind].model_version == previous
        assert {r[2] for r in _table(con, kind)} == {previous}


def test_without_any_promoted_model_the_best_baseline_scores(con, tmp_path) -> None:
    report = train_evaluate_score(con, tmp_path, config=WEAK)
    for kind, kind_report in report.kinds.items():
        assert not kind_report.promoted
        assert registry.active_version(tmp_path, kind) is None
        best = registry.load_metadata(tmp_path, kind, kind_report.candidate_version).best_baseline
        assert kind_report.active_version == f"baseline:{best}"
        rows = _table(con, kind)
        assert {r[2] for r in rows} == {f"baseline:{best}"} and {r[3] for r in rows} == {"[]"}
        scores = np.array([r[1] for r in rows])
        assert np.isfinite(scores).all() and (scores >= 0).all()
        if kind == "churn":
            assert (scores <= 1).all()


def test_charts_are_png(promoted_run) -> None:
    _, _, candidates = promoted_run
    expected = {"churn": {"roc", "lift", "deciles"}, "ltv": {"lift", "deciles"}}
    for kind, candidate in candidates.items():
        charts = candidate.plots()
        assert set(charts) == expected[kind]
        assert all(png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000 for png in charts.values())


@pytest.fixture(scope="module")
def short_run(tmp_path_factory) -> tuple[duckdb.DuckDBPyConnection, Path, dict[str, Candidate]]:
    """The synthetic demo's situation: 180-day windows at 12 cutoffs (bench/bench_ml.py), a 60-day window
    at 9, and a strong sign of buying soon, f_email_opens_30d, observed only for the last 170 days (an ESP
    connected since). The 180-day training rows never saw it; the latest four 60-day cutoffs and the
    people scored did."""
    connection = duckdb.connect(str(tmp_path_factory.mktemp("short") / "warehouse.duckdb"))
    tables = simulate_tables(
        customers=3000, cutoffs=12, horizon_days=180, short_horizon_days=60, short_cutoffs=9,
        signal_since_days_before=170,
    )  # fmt: skip
    write_tables(connection, tables)
    model_dir = tmp_path_factory.mktemp("short_models")
    said: list[str] = []
    candidates = train_candidates(connection, model_dir, config=GOOD, progress=said.append)
    score_active(connection, model_dir)
    assert any(line.startswith("short window: 60-day window used: 1 feature(s)") for line in said), said
    yield connection, model_dir, candidates
    connection.close()


def test_behaviour_newer_than_the_main_window_is_learnt_by_the_short_window(short_run) -> None:
    con, model_dir, candidates = short_run
    for kind, candidate in candidates.items():
        metadata = registry.load_metadata(model_dir, kind, candidate.metadata.version)
        short = metadata.short_window
        assert short is not None and metadata.short_window_decision.startswith("60-day window used"), kind
        assert short.horizon_days == 60 and short.teaches == ["f_email_opens_30d"] and short.weight == 0.7
        assert len(short.cutoffs) == 9 and metadata.validation_cutoff in short.cutoffs
        assert short.validation_fit_cutoffs == short.cutoffs[:3]
        # No tree can split on a column with one value: only the short model learnt the new signal.
        main_splits = registry.load_booster(model_dir, kind, metadata.version).get_score()
        short_splits = registry.load_booster(model_dir, kind, metadata.version, short=True).get_score()
        assert "f_email_opens_30d" not in main_splits and "f_email_opens_30d" in short_splits, kind


def test_scores_average_the_main_and_the_short_model(short_run) -> None:
    con, model_dir, candidates = short_run
    scoring = with_btyd_features(load_scoring_features(con))
    silent = (scoring.rows["f_email_opens_30d"] == 0).to_numpy()
    # The same people, had the silent ones opened emails: only the short model can tell the difference.
    rows = scoring.rows.assign(f_email_opens_30d=np.where(silent, 20.0, scoring.rows["f_email_opens_30d"]))
    opened = ExampleFrame(scoring.table, rows, scoring.features, scoring.horizon_days)
    for kind, candidate in candidates.items():
        metadata = candidate.metadata
        main_only = predict(
            registry.load_booster(model_dir, kind, metadata.version),
            feature_matrix(scoring, metadata.features), metadata.features, kind, metadata.calibration_scale,
        )  # fmt: skip
        table = dict((person, value) for person, value, *_ in _table(con, kind))
        shipped = np.array([table[p] for p in scoring.rows["person_id"].astype(str)])
        # The short model reads the BTYD features fitted for its own 60 days, and BG/NBD at the as-of carries
        # its scores to the 180-day horizon; the short window weighs 0.7.
        short_scoring = stack_btyd(scoring, 60)
        churn_ratio, ltv_ratio = horizon_ratios(short_scoring, 60, 180)
        short_only = (churn_ratio if kind == "churn" else ltv_ratio) * predict(
            registry.load_booster(model_dir, kind, metadata.version, short=True),
            feature_matrix(short_scoring, metadata.features), metadata.features, kind,
            metadata.short_window.calibration_scale,
        )  # fmt: skip
        # The short window supplies the ranking, the main window the level: the short LTV's total over the
        # people scored is the main model's, the short churn probabilities' mean (in log-odds) the main one's.
        method = score(scoring, model_dir, kind).reasons_method
        if kind == "ltv":
            assert abs(short_only.sum() / main_only.sum() - 1) > 0.01
            level = main_only.sum() / short_only.sum()
            short_only = short_only * level
            np.testing.assert_allclose(shipped.sum(), main_only.sum(), rtol=1e-6)
            # The report says how far off the short model's level was.
            assert f"the 60-day model's scores scaled by {level:.3f} to the main model's total" in method
        else:
            assert abs(short_only.mean() - main_only.mean()) > 0.005
            short_only, shift = _shifted_to_mean(short_only, main_only.mean())
            np.testing.assert_allclose(shipped.mean(), main_only.mean(), rtol=1e-6)
            assert f"the 60-day model's log-odds shifted by {shift:+.3f} to the main model's mean" in method
        assert "contributions averaged with weights 0.3 and 0.7" in method, method
        np.testing.assert_allclose(shipped, 0.3 * main_only + 0.7 * short_only, rtol=1e-6)
        assert np.abs(shipped - main_only).mean() > 1e-3, kind
        np.testing.assert_allclose(score(scoring, model_dir, kind).frame["score"], shipped, rtol=1e-9)
        counterfactual = score(opened, model_dir, kind).frame["score"].to_numpy()
        # The others' short scores move by the one factor (LTV) or log-odds shift (churn) that keeps them at
        # the main model's level.
        before, after = (shipped - 0.3 * main_only) / 0.7, (counterfactual - 0.3 * main_only) / 0.7
        if kind == "churn":
            shifted = np.log(after / (1 - after)) - np.log(before / (1 - before))
            np.testing.assert_allclose(shifted[~silent], shifted[~silent][0], atol=1e-6)
            assert shifted[~silent][0] > 0.01
        else:
            factor = after[~silent] / before[~silent]
            np.testing.assert_allclose(factor, factor[0], rtol=1e-6)
            assert factor[0] < 0.99
        change = (counterfactual - shipped)[silent].mean()
        # Opening emails is a sign of being alive: less churn, more spend.
        assert change < -0.01 if kind == "churn" else change > 0, (kind, change)
        reasons = [json.loads(r[3]) for r in _table(con, kind)]
        assert any(item["feature"] == "f_email_opens_30d" for row in reasons for item in row), kind


def _shifted_to_mean(probabilities: np.ndarray, mean: float) -> tuple[np.ndarray, float]:
    """The probabilities with their log-odds shifted by the one amount that gives them this mean."""
    log_odds = np.log(probabilities / (1 - probabilities))
    shift = brentq(lambda c: (1 / (1 + np.exp(-log_odds - c))).mean() - mean, -10, 10, xtol=1e-12)
    return 1 / (1 + np.exp(-log_odds - shift)), shift


def test_the_short_window_supplies_the_ranking_and_the_main_window_the_level() -> None:
    main, short = np.array([10.0, 20.0, 30.0]), np.array([1.0, 0.0, 5.0])
    # LTV: the short scores at the main total (60: 10, 0, 50), then the weighted mean, 0.7 on the short.
    np.testing.assert_allclose(average_scores("ltv", main, short), [10.0, 6.0, 44.0])
    np.testing.assert_allclose(average_scores("ltv", main, short, 0.5), [10.0, 10.0, 40.0])
    # Churn: the short probabilities shifted in log-odds to the main mean, then the weighted mean.
    # Odds 1/3 and 3 times 3 are 1 and 9: probabilities 0.5 and 0.9, whose mean is the main mean, 0.7.
    main_churn, short_churn = np.array([0.6, 0.8]), np.array([0.25, 0.75])
    np.testing.assert_allclose(average_scores("churn", main_churn, short_churn), [0.53, 0.87])
    # Short probabilities already at the main mean are averaged as they are.
    np.testing.assert_allclose(average_scores("churn", main_churn, main_churn[::-1], 0.5), [0.7, 0.7])
    # A short model that predicts nothing has no level to scale: it averages in as zeros.
    np.testing.assert_allclose(average_scores("ltv", main, np.zeros(3), 0.25), 0.75 * main)


def test_the_evaluation_and_promotion_judge_the_average(short_run) -> None:
    con, _, candidates = short_run
    examples = with_btyd_features(load_training_examples(con))
    short = load_training_sets(con).short
    assert short is not None
    for kind, candidate in candidates.items():
        main_only = train_model(examples, kind, GOOD)
        pair = train_short_pair(short, main_only, GOOD)
        averaged = pair.averaged(main_only)
        assert not np.allclose(averaged.validation_predicted, main_only.validation_predicted)
        short_validation = pair.validation_predicted
        # Judged as it scores: the short predictions at the main model's level (average_scores).
        if kind == "ltv":
            assert abs(short_validation.sum() / main_only.validation_predicted.sum() - 1) > 0.01
            short_validation = (
                short_validation * main_only.validation_predicted.sum() / short_validation.sum()
            )
        else:
            assert abs(short_validation.mean() - main_only.validation_predicted.mean()) > 0.005
            short_validation, _ = _shifted_to_mean(short_validation, main_only.validation_predicted.mean())
        np.testing.assert_allclose(
            averaged.validation_predicted, 0.3 * main_only.validation_predicted + 0.7 * short_validation
        )
        # What the promotion rule judged is the average's validation predictions, not the main model's.
        np.testing.assert_allclose(candidate.trained.validation_predicted, averaged.validation_predicted)
        np.testing.assert_array_equal(
            candidate.trained.validation_person_ids, main_only.validation_person_ids
        )


def test_the_short_window_is_skipped_when_the_main_window_saw_everything(con, tmp_path) -> None:
    # The module's tables hold no short window: dbt var ml_short_horizon_days was 0.
    sets = load_training_sets(con)
    assert sets.short is None and sets.short_decision.startswith("not built")
    with_short = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    write_tables(with_short, simulate_tables(customers=600, cutoffs=6, short_horizon_days=60))
    sets = load_training_sets(with_short)
    assert sets.short is None
    assert sets.short_decision.startswith("60-day window not used: every feature of the people scored varies")
    with_short.close()


@pytest.mark.parametrize(
    ("short_days", "short_cutoffs", "why"),
    [
        # 180 - 45 is no multiple of the 30-day spacing.
        (45, 9, "none of its 45-day cutoffs falls on the main validation cutoff"),
        # Five cutoffs reach the main validation cutoff but leave none whose window ends by it.
        (60, 5, "none of its 60-day label windows ends by the main validation cutoff"),
        # One cutoff cannot be trained on with temporal validation: not used, and the main models still train.
        (60, 1, "its 60-day training set cannot be used: ml.ml_training_examples has a single cutoff"),
    ],
)
def test_a_short_window_that_cannot_be_validated_is_not_used_and_says_why(
    tmp_path, short_days: int, short_cutoffs: int, why: str
) -> None:
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as connection:
        tables = simulate_tables(
            customers=600, cutoffs=12, horizon_days=180, short_horizon_days=short_days,
            short_cutoffs=short_cutoffs, signal_since_days_before=170,
        )  # fmt: skip
        write_tables(connection, tables)
        sets = load_training_sets(connection)
    assert sets.short is None
    assert sets.short_decision.startswith(f"{short_days}-day window not used: {why}"), sets.short_decision


def test_restacking_for_another_window_replaces_the_stacked_features(con) -> None:
    stacked = with_btyd_features(load_scoring_features(con))
    restacked = stack_btyd(stacked, 60)
    assert restacked.features == stacked.features
    assert list(restacked.rows.columns) == list(stacked.rows.columns)
    before, after = stacked.rows["f_stack_bgnbd_purchases"], restacked.rows["f_stack_bgnbd_purchases"]
    assert (after < before).all()  # fewer purchases expected in 60 days than in 90


def test_scoring_falls_back_to_the_main_model_when_the_short_window_cannot_be_mapped(
    short_run, monkeypatch
) -> None:
    con, model_dir, candidates = short_run
    scoring = with_btyd_features(load_scoring_features(con))

    def unfittable(*_args: object) -> None:
        raise ValueError("BG/NBD did not converge")

    monkeypatch.setattr("ml.scoring.horizon_ratios", unfittable)
    for kind, candidate in candidates.items():
        metadata = candidate.metadata
        with pytest.warns(RuntimeWarning, match="180-day model alone"):
            result = score(scoring, model_dir, kind)
        assert "its short window cannot be mapped: BG/NBD did not converge" in result.reasons_method
        main_only = predict(
            registry.load_booster(model_dir, kind, metadata.version),
            feature_matrix(scoring, metadata.features), metadata.features, kind, metadata.calibration_scale,
        )  # fmt: skip
        np.testing.assert_allclose(result.frame["score"], main_only, rtol=1e-9)
