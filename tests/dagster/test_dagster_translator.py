"""The translator's rules on hand-written manifest nodes (the real manifest is covered elsewhere)."""

from dagster import AssetKey

from dagster_app.translator import PersonalizeDbtTranslator


def _model(fqn: list[str], **overrides) -> dict:
    props = {
        "resource_type": "model",
        "name": fqn[-1],
        "fqn": ["personalize", *fqn],
        "config": {"schema": fqn[0] if len(fqn) > 1 else None, "materialized": "table", "meta": {}},
        "description": "",
        "raw_code": "select 1 as id",
    }
    props.update(overrides)
    return props


def _source(source_name: str, name: str, meta: dict) -> dict:
    return {
        "resource_type": "source",
        "source_name": source_name,
        "name": name,
        "fqn": ["personalize", "staging", source_name, source_name, name],
        "config": {"meta": meta},
        "meta": meta,
    }


translator = PersonalizeDbtTranslator()


def test_groups_follow_the_layer_folder() -> None:
    assert translator.get_group_name(_model(["staging", "shop", "stg_shop__orders"])) == "staging"
    assert translator.get_group_name(_model(["intermediate", "int_identity_map"])) == "intermediate"
    assert translator.get_group_name(_model(["marts", "customer_360"])) == "marts"
    assert translator.get_group_name(_model(["ml", "training", "ml_churn_training_set"])) == "ml"
    assert translator.get_group_name(_model(["activation", "esp_audience"])) == "activation"
    assert translator.get_group_name(_model(["new-layer", "thing"])) == "new_layer"
    assert translator.get_group_name(_model(["loose_model"])) == "dbt"
    seed = {"resource_type": "seed", "name": "fx_rates", "fqn": ["personalize", "fx_rates"], "config": {}}
    assert translator.get_group_name(seed) == "seeds"


def test_dagster_meta_on_a_model_overrides_group_and_owners() -> None:
    meta = {"dagster": {"group": "special", "owners": ["ds@example.com"]}}
    props = _model(["marts", "customer_360"], meta=meta, config={"schema": "marts", "meta": meta})
    assert translator.get_group_name(props) == "special"
    assert translator.get_owners(props) == ["ds@example.com"]
    assert translator.get_owners(_model(["marts", "customer_rfm"])) == ["team:analytics-engineering"]


def test_model_keys_read_like_warehouse_relations() -> None:
    assert translator.get_asset_key(_model(["marts", "customer_360"])) == AssetKey(["marts", "customer_360"])


def test_source_keys() -> None:
    landing = _source("shop", "orders", {"landing_zone": {"folder": "shop_orders", "required": True}})
    assert translator.get_asset_key(landing) == AssetKey(["raw", "shop_orders"])
    scores = _source("ml", "churn_scores", {"dagster": {"asset_key": ["ml", "churn_scores"]}})
    assert translator.get_asset_key(scores) == AssetKey(["ml", "churn_scores"])
    # An explicit asset key wins over the landing-zone convention.
    both = _source(
        "shop",
        "orders",
        {"landing_zone": {"folder": "shop_orders"}, "dagster": {"asset_key": ["ext", "orders"]}},
    )
    assert translator.get_asset_key(both) == AssetKey(["ext", "orders"])
    assert translator.get_asset_key(_source("legacy", "table", {})) == AssetKey(["legacy", "table"])


def test_descriptions_fall_back_to_what_the_node_is_and_show_sql() -> None:
    documented = translator.get_description(
        _model(["marts", "customer_360"], description="One row per person.")
    )
    assert documented.startswith("One row per person.")
    assert "select 1 as id" in documented
    undocumented = translator.get_description(_model(["marts", "customer_rfm"]))
    assert undocumented.startswith("dbt model `customer_rfm`, materialized as a table")


def test_automation_conditions_by_layer_and_refresh_tag() -> None:
    assert translator.get_automation_condition(_model(["staging", "shop", "stg_shop__orders"])) is None
    seed = {"resource_type": "seed", "name": "fx_rates", "fqn": ["personalize", "fx_rates"], "config": {}}
    assert translator.get_automation_condition(seed) is None
    # A heavy mart ignores updates coming from the 15-minute refresh; a refreshed activation model does not.
    mart = translator.get_automation_condition(_model(["marts", "customer_360"]))
    audience = translator.get_automation_condition(
        _model(["activation", "esp_audience"], tags=["frequent_refresh"])
    )
    assert mart.get_label() == audience.get_label() == "eager"
    assert "frequent_refresh" in repr(mart)
    assert "frequent_refresh" not in repr(audience)
