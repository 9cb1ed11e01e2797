"""The code location loads and its asset graph has the shape the design promises."""

import os

import dagster as dg
import pytest

# Every landing-zone source of the raw data contract (DESIGN.md).
CONTRACT_SOURCES = (
    "consent_events",
    "crm_customers",
    "esp_events",
    "privacy_requests",
    "products",
    "shop_order_lines",
    "shop_orders",
    "web_events",
)
QUALITY_MODEL = dg.AssetKey(["quality", "quality_raw_row_counts"])
SEEDS = {dg.AssetKey(["seeds", name]) for name in ("country_aliases", "country_codes", "fx_rates")}
RAW = {dg.AssetKey(["raw", name]) for name in CONTRACT_SOURCES}


@pytest.fixture(scope="module")
def asset_graph(defs):
    return defs.resolve_asset_graph()


def test_definitions_validate(defs) -> None:
    dg.Definitions.validate_loadable(defs)


@pytest.fixture(scope="module")
def manifest(defs) -> dict:
    from dagster_app.project import dbt_manifest

    return dbt_manifest


def test_raw_assets_are_the_landing_zone_sources_of_the_manifest(asset_graph, manifest) -> None:
    folders = {
        source["config"]["meta"]["landing_zone"]["folder"]
        for source in manifest["sources"].values()
        if source["config"]["meta"].get("landing_zone")
    }
    assert folders == set(CONTRACT_SOURCES)
    assert {key for key in asset_graph.get_all_asset_keys() if key.path[0] == "raw"} == RAW
    for key in RAW:
        node = asset_graph.get(key)
        assert node.group_name == "raw"
        assert node.is_observable and not node.is_materializable, key
    orders = asset_graph.get(dg.AssetKey(["raw", "shop_orders"]))
    assert orders.metadata["required"] is True
    assert "Landing folder `shop_orders/`" in (orders.description or "")


def test_dbt_model_and_seed_assets(asset_graph, manifest) -> None:
    quality = asset_graph.get(QUALITY_MODEL)
    assert quality.group_name == "quality"
    assert quality.is_materializable
    assert set(quality.kinds) == {"dbt", "duckdb"}
    assert quality.owners == ["team:analytics-engineering"]
    documented = manifest["nodes"]["model.personalize.quality_raw_row_counts"]["description"].strip()
    assert documented and quality.description.startswith(documented)
    for key in SEEDS:
        assert asset_graph.get(key).group_name == "seeds", key
        assert asset_graph.get(key).is_materializable


def test_every_dbt_model_and_seed_is_an_asset_in_its_folder_group(asset_graph, manifest) -> None:
    nodes = [node for node in manifest["nodes"].values() if node["resource_type"] in {"model", "seed"}]
    assert len(nodes) >= 4
    for node in nodes:
        key = dg.AssetKey([node["config"]["schema"], node["name"]])
        if node["resource_type"] == "seed":
            expected_group = "seeds"
        else:
            # dbt_project/models/<layer>/...: the layer folder names the group.
            expected_group = node["original_file_path"].split("/")[2]
        assert asset_graph.get(key).group_name == expected_group, key


def test_dbt_sources_map_to_the_raw_assets(asset_graph, manifest) -> None:
    raw_key_of_source = {
        unique_id: dg.AssetKey(["raw", source["config"]["meta"]["landing_zone"]["folder"]])
        for unique_id, source in manifest["sources"].items()
        if source["config"]["meta"].get("landing_zone")
    }
    readers = 0
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model":
            continue
        expected = {raw_key_of_source[up] for up in node["depends_on"]["nodes"] if up in raw_key_of_source}
        if expected:
            readers += 1
            key = dg.AssetKey([node["config"]["schema"], node["name"]])
            assert expected <= asset_graph.get(key).parent_keys, key
    assert readers, "some model reads the landing zone"
    # Every upstream key is defined: no dbt source is left as an unknown external asset.
    defined = set(asset_graph.get_all_asset_keys())
    for key in defined:
        assert asset_graph.get(key).parent_keys <= defined, key


def test_dbt_tests_are_blocking_asset_checks(asset_graph) -> None:
    checks = {check.name: check for check in asset_graph.asset_check_keys if check.asset_key == QUALITY_MODEL}
    assert {"unique_quality_raw_row_counts_source_name", "column_checks_quality_raw_row_counts"} <= set(
        checks
    )
    spec = asset_graph.get_check_spec(checks["unique_quality_raw_row_counts_source_name"])
    assert spec.blocking, "error-severity dbt tests must block downstream assets"


def test_full_build_job_runs_everything_in_process(defs, asset_graph) -> None:
    job = defs.resolve_job_def("full_build")
    assert job.executor_def.name == "in_process"
    selected = job.asset_layer.asset_graph.get_all_asset_keys()
    assert RAW | SEEDS | {QUALITY_MODEL} <= set(selected)
    # The ad-hoc "Materialize" job the UI launches uses the same executor.
    assert defs.resolve_implicit_global_asset_job_def().executor_def.name == "in_process"


def test_daily_schedule_targets_full_build(defs) -> None:
    schedule = defs.resolve_schedule_def("daily_full_build")
    assert schedule.job_name == "full_build"
    assert schedule.cron_schedule == "0 5 * * *"
    assert schedule.execution_timezone == "UTC"


def test_resources_read_settings_when_runs_execute(defs, tmp_path, monkeypatch) -> None:
    from personalize.settings import PROJECT_DIR

    resources = defs.resources
    dbt = resources["dbt"]
    assert dbt.project_dir == str(PROJECT_DIR)
    assert dbt.profiles_dir == str(PROJECT_DIR)
    # The venv's dbt, not whatever `dbt` is on PATH (make does not put .venv/bin on PATH).
    assert dbt.dbt_executable.endswith("/dbt") and dbt.dbt_executable.startswith("/")
    monkeypatch.setenv("PERSONALIZE_DUCKDB_PATH", str(tmp_path / "elsewhere.duckdb"))
    assert resources["duckdb"].path() == tmp_path / "elsewhere.duckdb"


def test_old_dbt_invocation_dirs_are_pruned(defs, tmp_path, monkeypatch) -> None:
    from dagster_app.resources import PersonalizeDbtCliResource
    from personalize.dbt import dbt_executable

    (tmp_path / "dbt_project.yml").write_text("name: pruning\n")
    # dagster-dbt writes invocation dirs under $DBT_TARGET_PATH, relative to the project, as dbt does.
    monkeypatch.setenv("DBT_TARGET_PATH", "artifacts")
    target = tmp_path / "artifacts"
    invocations = [target / f"personalize_dbt-{index:07x}-abcdef{index % 10}" for index in range(25)]
    for age, path in enumerate(reversed(invocations)):
        path.mkdir(parents=True)
        os.utime(path, (1_700_000_000 + age, 1_700_000_000 + age))
    others = [target / "compiled", target / "run", target / "dbt-notes"]
    for path in others:
        path.mkdir()

    dbt = PersonalizeDbtCliResource(project_dir=str(tmp_path), dbt_executable=dbt_executable())
    removed = dbt.prune_invocation_dirs(keep=20)

    assert sorted(removed) == sorted(invocations[-5:]), "the five oldest go"
    assert all(path.exists() for path in invocations[:20] + others)
    assert not any(path.exists() for path in invocations[-5:])


ML_ASSETS = {dg.AssetKey(["ml", name]) for name in ("churn_model", "ltv_model", "churn_scores", "ltv_scores")}
FILE_SYNC = dg.AssetKey(["esp", "file_sync"])
ESP_SYNCS = {dg.AssetKey(["esp", "mailchimp_sync"]), dg.AssetKey(["esp", "klaviyo_sync"])}
ESP_ENV = {
    "MAILCHIMP_API_KEY": "test-key-us1",
    "MAILCHIMP_LIST_ID": "list-1",
    "MAILCHIMP_BASE_URL": "http://127.0.0.1:9/3.0",
    "KLAVIYO_API_KEY": "pk_test",
    "KLAVIYO_LIST_ID": "list-2",
    "KLAVIYO_BASE_URL": "http://127.0.0.1:9",
}


def test_ml_assets_sit_between_the_ml_marts_and_activation(asset_graph) -> None:
    assert set(asset_graph.get_all_asset_keys()) >= ML_ASSETS
    for name in ("churn", "ltv"):
        model = asset_graph.get(dg.AssetKey(["ml", f"{name}_model"]))
        scores = asset_graph.get(dg.AssetKey(["ml", f"{name}_scores"]))
        assert model.group_name == scores.group_name == "ml"
        assert dg.AssetKey(["ml", "ml_training_examples"]) in model.parent_keys
        assert {model.key, dg.AssetKey(["ml", "ml_scoring_features"])} <= scores.parent_keys
        # The dbt source ml_scores.<name>_scores names this key: activation reads what the asset wrote.
        assert scores.key in asset_graph.get(dg.AssetKey(["activation", "customer_scores"])).parent_keys
        assert {"python", "xgboost"} <= set(model.kinds)
        assert model.automation_condition is not None and scores.automation_condition is not None
    checks = {(key.asset_key.path[-1], key.name) for key in asset_graph.asset_check_keys}
    assert {("churn_model", "beats_baselines"), ("ltv_scores", "scores_fresh_and_complete")} <= checks


def test_file_sync_always_and_esp_syncs_only_when_configured(defs, asset_graph, session_data) -> None:
    import json
    import subprocess
    import sys

    sync = asset_graph.get(FILE_SYNC)
    assert sync.group_name == "activation", "the 15-minute refresh delivers the activation group"
    # The audience to send, the addresses to erase and the people to unsubscribe first (dbt models of the
    # refresh).
    erasures, opt_outs = (
        dg.AssetKey(["activation", "esp_erasures"]),
        dg.AssetKey(["activation", "esp_opt_outs"]),
    )
    assert sync.parent_keys == {dg.AssetKey(["activation", "esp_audience"]), erasures, opt_outs}
    refreshed = defs.resolve_job_def("frequent_refresh").asset_layer.selected_asset_keys
    assert {FILE_SYNC, erasures, opt_outs} <= refreshed
    configured = {key for key in ESP_SYNCS if key in asset_graph.get_all_asset_keys()}
    assert configured == {key for key in ESP_SYNCS if os.environ.get(f"{key.path[-1][:-5].upper()}_API_KEY")}

    # A fresh process with both ESPs configured loads a sync asset for each of them.
    script = (
        "import json, dagster as dg\n"
        "from dagster_app.definitions import defs\n"
        "dg.Definitions.validate_loadable(defs)\n"
        "print(json.dumps(sorted(k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()"
        " if k.path[0] == 'esp')))\n"
    )
    env = {**os.environ, **session_data.env(), **ESP_ENV}
    env.pop("DAGSTER_IS_DEV_CLI", None)
    loaded = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout.splitlines()[-1]) == [
        "esp/file_sync",
        "esp/klaviyo_sync",
        "esp/mailchimp_sync",
    ]
