"""Spec loading, OpenAPI 3.0 -> JSON Schema conversion, and the fast validator's agreement with jsonschema."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reverse_etl.testing import EspEmulator
from reverse_etl.testing.common import loads
from reverse_etl.testing.openapi import (
    SPECS_ENV,
    BodyValidator,
    SchemaCompiler,
    SpecError,
    UnsupportedSchema,
    convert_document,
    convert_schema,
    default_specs_dir,
    json_equal,
    load_operations,
    resolve_specs_dir,
)

KLAVIYO_SPECS = default_specs_dir() / "klaviyo"
OPERATIONS = load_operations(KLAVIYO_SPECS)
BODY_OPERATIONS = sorted(op_id for op_id, op in OPERATIONS.items() if op.body is not None)

_DOCS: dict[str, dict[str, Any]] = {}


def _converted_document(op_id: str) -> dict[str, Any]:
    if op_id not in _DOCS:
        for file in KLAVIYO_SPECS.glob("*.json"):
            spec = loads(file.read_bytes())
            if any(op.get("operationId") == op_id for item in spec["paths"].values() for op in item.values()):
                _DOCS[op_id] = convert_document(spec, strict=True)
    return _DOCS[op_id]


# -- instances generated from the schemas, mostly valid, sometimes subtly not ------------------------------
JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner, max_size=2),
    max_leaves=4,
)


def rarely(
    valid: st.SearchStrategy[Any], invalid: st.SearchStrategy[Any], odds: int = 15
) -> st.SearchStrategy[Any]:
    """`valid`, except about one draw in `odds` comes from `invalid` (so many whole bodies stay valid).

    The trigger sits mid-range: Hypothesis draws the bounds of an integer range far more often than the rest.
    """
    return st.integers(0, odds).flatmap(lambda n: invalid if n == odds // 2 else valid)


DATE_TIMES = rarely(
    st.sampled_from(["2024-01-31T12:00:00+00:00", "2024-01-31T12:00:00Z", "2024-01-31T12:00:00.123+02:00"]),
    st.sampled_from(["2024-01-31 12:00", "2024-02-30T00:00:00Z", "2024-01-31T12:00:00", "yesterday"]),
    odds=3,
)
DATES = rarely(
    st.sampled_from(["2000-02-29", "1999-12-31"]), st.sampled_from(["2001-02-29", "2024-13-01"]), 3
)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def instances(schema: Any, document: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values shaped by `schema`, with junk, missing required members and unknown members mixed in."""
    if depth > 14 or not isinstance(schema, dict):
        return JUNK
    if "$ref" in schema:
        return instances(_resolve(document, schema["$ref"]), document, depth + 1)
    if "anyOf" in schema or "oneOf" in schema:
        return st.one_of([instances(s, document, depth + 1) for s in schema.get("anyOf") or schema["oneOf"]])
    if "enum" in schema:
        valid: st.SearchStrategy[Any] = rarely(
            st.sampled_from(schema["enum"]), st.sampled_from(["", "PROFILE"])
        )
    else:
        kinds = schema.get("type", ["object", "string"])
        kinds = [kinds] if isinstance(kinds, str) else kinds
        valid = st.one_of([_typed(kind, schema, document, depth) for kind in kinds])
    return rarely(valid, JUNK, odds=60)


def _typed(kind: str, schema: dict[str, Any], document: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
    if kind == "object":
        props = schema.get("properties", {})
        required = [k for k in schema.get("required", []) if k in props]
        optional = {k: instances(v, document, depth + 1) for k, v in props.items() if k not in required}
        base = st.fixed_dictionaries(
            {k: instances(props[k], document, depth + 1) for k in required}, optional=optional
        )
        return st.tuples(base, st.integers(0, 40), st.sampled_from(["emial", "type", "x"])).map(
            _mutate(required)
        )
    if kind == "array":
        return st.lists(instances(schema.get("items", {}), document, depth + 1), max_size=3)
    if kind == "string":
        if schema.get("format") == "date-time":
            return DATE_TIMES
        if schema.get("format") == "date":
            return DATES
        return st.text(max_size=6)
    if kind == "integer":
        return rarely(st.integers(-5, 5) | st.just(1.0), st.just(2.5))
    if kind == "number":
        return st.integers(-5, 5) | st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    return st.none()


def _mutate(required: list[str]) -> Any:
    def mutate(drawn: tuple[dict[str, Any], int, str]) -> dict[str, Any]:
        value, roll, extra = drawn
        if roll == 17 and required:
            value = {k: v for k, v in value.items() if k != required[0]}  # a required member missing
        elif roll == 23:
            value = {**value, extra: 1}  # an unknown member (or a wrong-typed known one)
        return value

    return mutate


@pytest.mark.parametrize("op_id", BODY_OPERATIONS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_validator_agrees_with_jsonschema(op_id: str, data: st.DataObject) -> None:
    validator = OPERATIONS[op_id].body
    assert validator is not None and validator.fast is not None
    instance = data.draw(instances({"$ref": validator.ref}, _converted_document(op_id)))
    assert validator.fast(instance) == validator.reference.is_valid(instance), instance


def _component_cases() -> list[tuple[str, str]]:
    """(operationId, schema name) for every object schema a request body can reach."""
    cases = []
    for op_id in BODY_OPERATIONS:
        document = _converted_document(op_id)
        for name, schema in document["components"]["schemas"].items():
            if (
                schema.get("type") == "object"
                and schema.get("properties")
                and _reachable(document, op_id, name)
            ):
                cases.append((op_id, name))
    return cases


def _reachable(document: dict[str, Any], op_id: str, name: str) -> bool:
    body = OPERATIONS[op_id].body
    assert body is not None
    seen: set[str] = set()
    todo = [body.ref.rsplit("/", 1)[1]]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo.extend(
            re.findall(r"#/components/schemas/(\w+)", repr(document["components"]["schemas"][current]))
        )
    return name in seen


@pytest.mark.parametrize(("op_id", "name"), _component_cases())
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_validator_agrees_on_each_component(op_id: str, name: str, data: st.DataObject) -> None:
    """Smaller schemas, denser coverage: deep keywords (a date format, a nested enum) get exercised often."""
    document = _converted_document(op_id)
    ref = f"#/components/schemas/{name}"
    validator = BodyValidator(document, ref, f"urn:test:{op_id}")
    assert validator.fast is not None
    instance = data.draw(instances({"$ref": ref}, document))
    assert validator.fast(instance) == validator.reference.is_valid(instance), instance


@pytest.mark.parametrize(
    ("schema", "instance", "valid"),
    [
        ({"oneOf": [{"type": "integer"}, {"type": "number"}]}, 1, False),  # matches both: not exactly one
        ({"oneOf": [{"type": "integer"}, {"type": "number"}]}, 1.5, True),
        ({"anyOf": [{"type": "integer"}, {"type": "number"}]}, 1, True),
        ({"type": "integer"}, 2.0, True),
        ({"type": "integer"}, True, False),
        ({"type": "number"}, False, False),
        ({"type": "object", "required": ["a"]}, {"b": 1}, False),
        ({"type": "object", "required": ["a"]}, [], False),
        ({"required": ["a"]}, [], True),  # keywords for objects ignore other types
        ({"properties": {"a": {"type": "string"}}, "additionalProperties": False}, {"b": 1}, False),
        ({"additionalProperties": {"type": "string"}}, {"b": "x"}, True),
        ({"additionalProperties": {"type": "string"}}, {"b": 1}, False),
        ({"type": "string", "format": "date-time"}, "2024-01-01T00:00:00Z", True),
        ({"type": "string", "format": "date-time"}, "2024-01-01T00:00:00", False),
        ({"type": "string", "format": "date"}, "2023-02-29", False),
        ({"format": "date"}, 5, True),
        ({"enum": ["a", 1]}, True, False),
        ({"enum": ["a", 1]}, 1.0, True),
        ({"const": None}, None, True),
        ({"type": "array", "items": {"type": "string"}, "maxItems": 1}, ["a", "b"], False),
        ({"type": "string", "minLength": 2, "pattern": "^x"}, "xy", True),
        ({"type": "string", "minLength": 2, "pattern": "^x"}, "yx", False),
        ({"not": {"type": "null"}, "minimum": 3}, 2, False),
        ({"allOf": [{"maximum": 3}, {"exclusiveMinimum": 1}]}, 1, False),
    ],
)  # fmt: skip
def test_compiler_keyword_semantics(schema: dict[str, Any], instance: Any, valid: bool) -> None:
    document = {"components": {"schemas": {"X": schema}}}
    validator = BodyValidator(document, "#/components/schemas/X", "urn:test:keywords")
    assert validator.fast is not None
    assert validator.reference.is_valid(instance) is valid  # the case itself is right
    assert validator.fast(instance) is valid


def test_realistic_bodies_take_the_fast_path() -> None:
    body = {
        "data": {
            "type": "profile-bulk-import-job",
            "attributes": {
                "profiles": {
                    "data": [
                        {
                            "type": "profile",
                            "id": None,
                            "attributes": {
                                "email": "a@example.com",
                                "first_name": "Ann",
                                "location": {"latitude": "40.7", "longitude": -74.0, "zip": None},
                                "properties": {"SEGMENT": "loyal", "nested": {"any": ["thing"]}},
                            },
                            "meta": {"patch_properties": {"append": {"SKUS": "1"}, "unset": ["OLD"]}},
                        }
                    ]
                }
            },
            "relationships": {"lists": {"data": [{"type": "list", "id": "Y6nRLr"}]}},
        }
    }
    validator = OPERATIONS["bulk_import_profiles"].body
    assert validator is not None and validator.fast is not None
    assert validator.fast(body)
    assert validator.reference.is_valid(body)
    assert validator.issues(body) == []


def test_nullable_conversion() -> None:
    assert convert_schema({"type": "string", "nullable": True, "description": "x"}, False) == {
        "type": ["string", "null"],
        "description": "x",
    }
    assert convert_schema({"type": "string", "enum": ["a"], "nullable": True}, False) == {
        "anyOf": [{"type": "string", "enum": ["a"]}, {"type": "null"}]
    }
    assert convert_schema({"$ref": "#/x", "nullable": True}, False) == {
        "anyOf": [{"$ref": "#/x"}, {"type": "null"}]
    }
    assert convert_schema({"type": "string"}, False) == {"type": "string"}
    # strict closes objects that list their properties, and only those.
    closed = convert_schema({"type": "object", "properties": {"a": {"type": "object"}}}, True)
    assert closed["additionalProperties"] is False
    assert "additionalProperties" not in closed["properties"]["a"]
    # Examples are data, not schemas: left alone.
    example = {"properties": {"x": {"nullable": True}}}
    assert convert_schema({"type": "object", "example": example}, True)["example"] == example


def test_compiler_refuses_what_it_does_not_know_and_the_validator_falls_back() -> None:
    with pytest.raises(UnsupportedSchema):
        SchemaCompiler({}).compile({"type": "object", "patternProperties": {"^a": {"type": "string"}}})
    document = {"components": {"schemas": {"X": {"type": "array", "uniqueItems": True}}}}
    validator = BodyValidator(document, "#/components/schemas/X", "urn:test")
    assert validator.fast is None
    assert validator.is_valid([1, 2])
    assert not validator.is_valid([1, 1])
    assert validator.issues([1, 1])[0].pointer == ""


def test_json_equality_follows_json_schema() -> None:
    assert not json_equal(True, 1)
    assert json_equal(1, 1.0)
    assert json_equal({"a": [1, "x"]}, {"a": [1.0, "x"]})
    assert not json_equal([1], [1, 1])


def test_request_bodies_all_compile() -> None:
    assert set(BODY_OPERATIONS) == {
        "bulk_import_profiles",
        "bulk_subscribe_profiles",
        "bulk_unsubscribe_profiles",
        "request_profile_deletion",
    }
    assert all(OPERATIONS[op].body.fast is not None for op in BODY_OPERATIONS)  # type: ignore[union-attr]


def test_specs_dir_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_specs_dir() == Path(__file__).resolve().parents[2].parent / "shared" / "esp-specs"
    missing = tmp_path / "nowhere"
    with pytest.raises(SpecError, match="nowhere") as raised:
        resolve_specs_dir(missing)
    assert SPECS_ENV in str(raised.value)

    copy = tmp_path / "specs"
    shutil.copytree(KLAVIYO_SPECS, copy / "klaviyo")
    monkeypatch.setenv(SPECS_ENV, str(copy))
    with EspEmulator() as esp:
        assert esp.specs_dir == copy.resolve()

    empty = tmp_path / "empty"
    (empty / "klaviyo").mkdir(parents=True)
    with pytest.raises(SpecError, match=r"no OpenAPI documents"):
        EspEmulator(specs_dir=empty)
    with pytest.raises(SpecError, match="no klaviyo/ directory"):
        EspEmulator(specs_dir=copy / "klaviyo")  # a vendor directory instead of the specs root
