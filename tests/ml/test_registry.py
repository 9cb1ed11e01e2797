"""The registry round-trips models and metadata; the promotion rule promotes, keeps, or falls back."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from ml import registry
from ml.evaluation import Evaluation
from ml.metrics import ChurnMetrics, LtvMetrics
from ml.promotion import best_baseline, decide
from ml.registry import ModelMetadata, RegistryError, ShortModelMetadata


def _booster(seed: int) -> xgb.Booster:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, 3))
    data = xgb.DMatrix(x, label=x[:, 0] + rng.normal(size=200), feature_names=["f_a", "f_b", "btyd_t"])
    return xgb.train({"tree_method": "hist", "nthread": 1, "seed": seed}, data, num_boost_round=5)


def _metadata(version: str, promoted: bool, created_at: str = "2026-01-01T00:00:00+00:00") -> ModelMetadata:
    return ModelMetadata(
        version=version,
        kind="churn",
        created_at=created_at,
        cutoffs=["2025-11-01", "2025-12-01"],
        validation_cutoff="2025-12-01",
        horizon_days=180,
        features=["f_a", "f_b", "btyd_t"],
        training_fingerprint="ab" * 32,
        training_rows=200,
        rounds=5,
        calibration_scale=1.0,
        params={"eta": 0.1},
        metrics={"xgboost": {"auc": 0.8, "pr_auc": float("nan")}, "pareto_nbd": {"auc": 0.7}},
        best_baseline="pareto_nbd",
        promoted=promoted,
        reason="test",
        unavailable_baselines={"bg_nbd": "did not converge"},
    )


def test_round_trip_model_and_metadata(tmp_path: Path) -> None:
    booster = _booster(1)
    metadata = _metadata("churn-20251201-00000001", promoted=True)
    registry.save(tmp_path, booster, metadata)

    loaded = registry.load_metadata(tmp_path, "churn", metadata.version)
    assert loaded.to_json() == metadata.to_json()  # NaN survives too
    assert registry.active_version(tmp_path, "churn") == metadata.version
    features = np.random.default_rng(0).normal(size=(50, 3))
    data = xgb.DMatrix(features, feature_names=metadata.features)
    np.testing.assert_array_equal(
        registry.load_booster(tmp_path, "churn", metadata.version).predict(data), booster.predict(data)
    )
    assert (tmp_path / "churn" / metadata.version / "model.ubj").is_file()


def test_a_short_window_model_round_trips_beside_the_main_one(tmp_path: Path) -> None:
    short = ShortModelMetadata(
        horizon_days=60, cutoffs=["2025-11-01", "2025-12-01"], validation_fit_cutoffs=["2025-11-01"],
        training_rows=150, rounds=4, calibration_scale=1.0, weight=0.5, teaches=["f_b"],
    )  # fmt: skip
    metadata = dataclasses.replace(
        _metadata("churn-s", promoted=True), short_window=short, short_window_decision="60-day window used"
    )
    main, second = _booster(1), _booster(2)
    registry.save(tmp_path, main, metadata, short_booster=second)
    loaded = registry.load_metadata(tmp_path, "churn", "churn-s")
    assert loaded.short_window == short and loaded.to_json() == metadata.to_json()
    data = xgb.DMatrix(np.random.default_rng(0).normal(size=(20, 3)), feature_names=metadata.features)
    for booster, is_short in ((main, False), (second, True)):
        stored = registry.load_booster(tmp_path, "churn", "churn-s", short=is_short)
        np.testing.assert_array_equal(stored.predict(data), booster.predict(data))
    # A booster without its metadata (or the other way round) would score wrongly: refused before writing.
    with pytest.raises(RegistryError, match="short-window booster must come with its metadata"):
        registry.save(tmp_path, main, _metadata("churn-t", promoted=False), short_booster=second)
    with pytest.raises(RegistryError, match="short-window booster"):
        registry.save(tmp_path, main, dataclasses.replace(metadata, version="churn-u"))
    assert not (tmp_path / "churn" / "churn-t").exists() and not (tmp_path / "churn" / "churn-u").exists()
    # Metadata written before the short window existed still loads.
    old = json.loads(metadata.to_json())
    del old["short_window"], old["short_window_decision"]
    assert ModelMetadata.from_json(json.dumps(old)).short_window is None


def test_the_base_margin_round_trips_and_older_metadata_had_none(tmp_path: Path) -> None:
    metadata = dataclasses.replace(
        _metadata("ltv-m", promoted=True), kind="ltv", base_margin="seasonal_exposure"
    )
    registry.save(tmp_path, _booster(1), metadata)
    assert registry.load_metadata(tmp_path, "ltv", "ltv-m").base_margin == registry.SEASONAL_MARGIN
    old = json.loads(metadata.to_json())
    del old["base_margin"]
    assert ModelMetadata.from_json(json.dumps(old)).base_margin == registry.NO_MARGIN
    # A margin scoring does not know would score wrongly: refused with the file's name.
    path = tmp_path / "ltv" / "ltv-m" / "metadata.json"
    path.write_text(json.dumps({**old, "base_margin": "bg_nbd"}))
    with pytest.raises(
        RegistryError, match=r"metadata.json is not valid model metadata: base_margin is 'bg_nbd'"
    ):
        registry.load_metadata(tmp_path, "ltv", "ltv-m")


def test_unpromoted_candidates_are_kept_but_not_active(tmp_path: Path) -> None:
    registry.save(tmp_path, _booster(1), _metadata("churn-a", True, "2026-01-01T00:00:00+00:00"))
    registry.save(tmp_path, _booster(2), _metadata("churn-b", False, "2026-01-02T00:00:00+00:00"))
    assert registry.active_version(tmp_path, "churn") == "churn-a"
    assert registry.latest(tmp_path, "churn").version == "churn-b"
    assert [m.version for m in registry.versions(tmp_path, "churn")] == ["churn-a", "churn-b"]
    assert registry.active_version(tmp_path, "ltv") is None


def test_versions_are_never_overwritten_and_errors_name_what_is_missing(tmp_path: Path) -> None:
    registry.save(tmp_path, _booster(1), _metadata("churn-a", False))
    with pytest.raises(RegistryError, match="never overwritten"):
        registry.save(tmp_path, _booster(1), _metadata("churn-a", False))
    with pytest.raises(RegistryError, match="churn-zzz"):
        registry.load_metadata(tmp_path, "churn", "churn-zzz")
    with pytest.raises(RegistryError, match="not in"):
        registry.activate(tmp_path, "churn", "churn-zzz")


def test_version_names_carry_kind_and_cutoff() -> None:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    version = registry.make_version("ltv", "2025-12-31", "f" * 64, created)
    assert version.startswith("ltv-20251231-") and len(version.split("-")[-1]) == 8
    assert version != registry.make_version("ltv", "2025-12-31", "f" * 64, datetime(2026, 1, 2, tzinfo=UTC))


def _churn(auc: float, lift: float, base_rate: float = 0.05) -> ChurnMetrics:
    return ChurnMetrics(base_rate=base_rate, auc=auc, pr_auc=0.5, brier=0.1, lift_at_10=lift, calibration=())


def _ltv(gini: float, spearman: float) -> LtvMetrics:
    return LtvMetrics(spearman, gini, 0.5, 0.2, 10.0, 100.0, 100.0)


def _evaluation(model, **baselines) -> Evaluation:
    kind = "churn" if isinstance(model, ChurnMetrics) else "ltv"
    return Evaluation(kind, date(2025, 12, 1), 100, model, baselines, {})


def test_promoted_only_when_every_baseline_is_beaten_on_both_metrics() -> None:
    baselines = {
        "bg_nbd": _churn(0.70, 3.0),
        "pareto_nbd": _churn(0.72, 3.2),
        "recency_heuristic": _churn(0.65, 2.5),
    }
    assert decide(_evaluation(_churn(0.75, 3.5), **baselines)).promoted
    lower_lift = decide(_evaluation(_churn(0.75, 3.1), **baselines))
    assert not lower_lift.promoted and "lift_at_10 3.1000 <= pareto_nbd 3.2000" in lower_lift.reason
    assert not decide(_evaluation(_churn(0.72, 3.5), **baselines)).promoted  # a tie is not a win
    assert not decide(_evaluation(_churn(float("nan"), 3.5), **baselines)).promoted


def test_lift_at_its_ceiling_ties_instead_of_failing() -> None:
    # 80% churners: a top decile of churners only is lift 1.25, the best anyone can do.
    baselines = {"pareto_nbd": _churn(0.72, 1.25, 0.8)}
    assert decide(_evaluation(_churn(0.75, 1.25, 0.8), **baselines)).promoted
    assert not decide(_evaluation(_churn(0.75, 1.2, 0.8), **{"pareto_nbd": _churn(0.72, 1.2, 0.8)})).promoted


def test_ltv_rule_uses_gini_and_spearman_and_best_baseline_by_gini() -> None:
    baselines = {
        "bg_nbd": _ltv(0.60, 0.50),
        "pareto_nbd": _ltv(0.65, 0.45),
        "frequency_heuristic": _ltv(0.5, 0.4),
    }
    assert decide(_evaluation(_ltv(0.70, 0.55), **baselines)).promoted
    failed = decide(_evaluation(_ltv(0.70, 0.48), **baselines))
    assert not failed.promoted and "spearman" in failed.reason and "bg_nbd" in failed.reason
    assert best_baseline(_evaluation(_ltv(0.70, 0.55), **baselines)) == "pareto_nbd"
    assert not decide(_evaluation(_ltv(0.9, 0.9))).promoted  # nothing to compare with: never promoted


def test_metadata_is_a_frozen_record() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        _metadata("x", False).promoted = True  # type: ignore[misc]
