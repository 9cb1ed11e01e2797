"""A fresh clone (no target/) gets a manifest, new dbt models become assets, and staleness is detected."""

import os
import shutil
from pathlib import Path

import dagster as dg
import pytest
from dagster_dbt import dbt_assets

from personalize.settings import PROJECT_DIR

NEW_FILES = {
    "dbt_project/models/staging/shop/stg_shop__orders.sql": (
        "select order_id, updated_at from {{ source('shop', 'orders') }}\n"
    ),
    "dbt_project/models/intermediate/int_orders_deduplicated.sql": (
        "select distinct order_id from {{ ref('stg_shop__orders') }}\n"
    ),
    "dbt_project/models/activation/churn_audience.sql": (
        "select o.order_id from {{ ref('int_orders_deduplicated') }} as o\n"
        # The project's own score source (models/ml/_ml__sources.yml), keyed to the asset ml/churn_scores.
        "cross join {{ source('ml_scores', 'churn_scores') }} as s\n"
    ),
}


@pytest.fixture
def fresh_clone(tmp_path: Path) -> Path:
    clone = tmp_path / "clone"
    clone.mkdir()
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy2(PROJECT_DIR / name, clone / name)
    for folder in ("dbt_project", "seeds"):
        shutil.copytree(PROJECT_DIR / folder, clone / folder, ignore=shutil.ignore_patterns("target", "logs"))
    for relative, text in NEW_FILES.items():
        (clone / relative).parent.mkdir(parents=True, exist_ok=True)
        (clone / relative).write_text(text, encoding="utf-8")
    return clone


def test_fresh_clone_is_parsed_once_and_new_models_become_assets(
    fresh_clone: Path, defs, monkeypatch
) -> None:
    from dagster_app.project import load_dbt_project, manifest_is_current
    from dagster_app.translator import PersonalizeDbtTranslator

    # The default target path, as in a fresh clone outside the test workers (tests/conftest.py sets one each).
    monkeypatch.delenv("DBT_TARGET_PATH", raising=False)
    assert not (fresh_clone / "target").exists()
    project = load_dbt_project(fresh_clone)
    assert project.manifest_path == fresh_clone / "target" / "manifest.json"
    assert project.manifest_path.is_file()
    assert manifest_is_current(project)

    @dbt_assets(
        manifest=project.manifest_path, project=project, dagster_dbt_translator=PersonalizeDbtTranslator()
    )
    def clone_assets(): ...

    graph = dg.Definitions(assets=[clone_assets]).resolve_asset_graph()
    staging = dg.AssetKey(["staging", "stg_shop__orders"])
    intermediate = dg.AssetKey(["intermediate", "int_orders_deduplicated"])
    audience = dg.AssetKey(["activation", "churn_audience"])
    assert graph.get(staging).group_name == "staging"
    assert graph.get(intermediate).group_name == "intermediate"
    assert graph.get(audience).group_name == "activation"
    assert graph.get(staging).parent_keys == {dg.AssetKey(["raw", "shop_orders"])}
    # A score table written by a Python asset feeds dbt through its source's meta.dagster.asset_key.
    assert graph.get(audience).parent_keys == {intermediate, dg.AssetKey(["ml", "churn_scores"])}

    # Loading again with nothing changed reuses the manifest instead of parsing.
    parsed_at = project.manifest_path.stat().st_mtime_ns
    load_dbt_project(fresh_clone)
    assert project.manifest_path.stat().st_mtime_ns == parsed_at

    # Each of these makes the manifest stale: an edited model, another environment, another process's parse.
    model = fresh_clone / "dbt_project/models/intermediate/int_orders_deduplicated.sql"
    stat = model.stat()
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert not manifest_is_current(project)
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert manifest_is_current(project)

    # Another landing zone needs no parse; another warehouse file or another target does.
    with monkeypatch.context() as patch:
        patch.setenv("PERSONALIZE_RAW_DIR", str(fresh_clone / "elsewhere" / "raw"))
        assert manifest_is_current(project)
        patch.setenv("PERSONALIZE_DUCKDB_PATH", str(fresh_clone / "elsewhere" / "warehouse.duckdb"))
        assert not manifest_is_current(project)
    assert manifest_is_current(project)
    with monkeypatch.context() as patch:
        patch.setenv("PERSONALIZE_DBT_TARGET", os.environ.get("PERSONALIZE_DBT_TARGET", "duckdb") + "_other")
        assert not manifest_is_current(project)
    assert manifest_is_current(project)

    project.manifest_path.write_text(project.manifest_path.read_text() + " ")
    assert not manifest_is_current(project)
