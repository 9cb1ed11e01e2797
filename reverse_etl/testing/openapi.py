"""Request-body validation against the vendors' OpenAPI 3.0 documents.

Two validators share one converted schema:

* `jsonschema` (Draft 2020-12) is the reference. It produces the error messages and JSON pointers, and it has
  the final word whenever a body looks invalid.
* A small compiler turns the same schema into nested Python closures. jsonschema needs ~1.1 s for one
  10,000-profile Klaviyo import, which alone would cap a sync at ~9k profiles/s; the closures take a few
  milliseconds. They only ever answer "valid"; anything else is re-checked by jsonschema. Their agreement with
  jsonschema is property-tested (tests/reverse_etl/test_emulator_openapi.py). A schema using a keyword the
  compiler does not know makes it refuse to compile, and that operation then uses jsonschema alone.

OpenAPI 3.0 is not JSON Schema: `nullable: true` is converted to a JSON Schema null alternative. With
`strict=True` every object schema that lists `properties` is closed (`additionalProperties: false`); Klaviyo's
API rejects attributes it does not know, and a typo such as "propertes" must fail loudly, not drop the data.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from reverse_etl.testing.common import loads
from reverse_etl.testing.ratelimit import RateLimit

SPECS_ENV = "ESP_SPECS_DIR"

Check = Callable[[Any], bool]


class SpecError(RuntimeError):
    """The vendor specs are missing or not what the emulator expects."""


def default_specs_dir() -> Path:
    """`<repo>/../shared/esp-specs`: the specs live next to the repository, not inside it."""
    return Path(__file__).resolve().parents[2].parent / "shared" / "esp-specs"


def resolve_specs_dir(specs_dir: str | Path | None = None) -> Path:
    """The argument, else $ESP_SPECS_DIR, else the default; fail with a message that says where we looked."""
    chosen = specs_dir or os.environ.get(SPECS_ENV) or default_specs_dir()
    path = Path(chosen).expanduser().resolve()
    if not path.is_dir():
        raise SpecError(
            f"ESP OpenAPI specs not found at {path}. Pass specs_dir=..., set ${SPECS_ENV}, or place the "
            f"vendor specs at {default_specs_dir()} (klaviyo/*.json)."
        )
    return path


# -- formats -------------------------------------------------------------------------------------------------
# jsonschema asserts no format unless asked, and its "date-time" needs an optional package; both validators
# use these two checkers so they agree.
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$")


def _is_date(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _DATE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _DATE_TIME.match(value):
        return False
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


FORMAT_CHECKS: dict[str, Callable[[object], bool]] = {"date": _is_date, "date-time": _is_date_time}


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())
    for name, func in FORMAT_CHECKS.items():
        checker.checks(name)(func)
    return checker


# -- OpenAPI 3.0 -> JSON Schema ------------------------------------------------------------------------------
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs")
_SCHEMA_VALUES = ("items", "additionalProperties", "not")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf")
_VALUE_ASSERTIONS = {"enum", "const", "$ref", "anyOf", "oneOf", "allOf", "not"}


def convert_schema(node: Any, strict: bool) -> Any:
    """Convert one OpenAPI 3.0 schema object (recursing only into schema positions, never into examples)."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "nullable":
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: convert_schema(sub, strict) for name, sub in value.items()}
        elif key in _SCHEMA_VALUES and isinstance(value, dict):
            out[key] = convert_schema(value, strict)
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [convert_schema(sub, strict) for sub in value]
        else:
            out[key] = value
    if strict and "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if node.get("nullable") is True:
        # Klaviyo marks $ref and oneOf members nullable too, and its SDKs send null for them, so null is
        # accepted wherever the spec says nullable (a literal OAS 3.0.3 reading would ignore some of these).
        kind = out.get("type")
        if isinstance(kind, str) and not (out.keys() & _VALUE_ASSERTIONS):
            out["type"] = [kind, "null"]  # same meaning as the anyOf below, and faster to check
        else:
            return {"anyOf": [out, {"type": "null"}]}
    return out


def convert_document(spec: dict[str, Any], strict: bool) -> dict[str, Any]:
    schemas = spec.get("components", {}).get("schemas", {})
    return {"components": {"schemas": {name: convert_schema(s, strict) for name, s in schemas.items()}}}


# -- the compiler --------------------------------------------------------------------------------------------
class UnsupportedSchema(Exception):
    pass


_ANNOTATIONS = {
    "description",
    "example",
    "examples",
    "default",
    "title",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$comment",
    "$schema",
    "$id",
    "discriminator",
    "externalDocs",
    "xml",
}
_NONE = type(None)
_SIMPLE_TYPES: dict[str, type] = {
    "string": str,
    "object": dict,
    "array": list,
    "boolean": bool,
    "null": _NONE,
}


def _always(_: Any) -> bool:
    return True


def _never(_: Any) -> bool:
    return False


def _is_number(v: Any) -> bool:
    t = type(v)
    return t is int or t is float


def json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON Schema defines it (true != 1, 1 == 1.0), mirroring jsonschema's `equal`."""
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        return False
    return a == b


class SchemaCompiler:
    """Compile a converted schema (with `#/...` refs into `document`) into a `value -> bool` closure."""

    def __init__(self, document: dict[str, Any]) -> None:
        self._document = document
        self._refs: dict[str, Check] = {}

    def compile(self, schema: Any) -> Check:
        if schema is True:
            return _always
        if schema is False:
            return _never
        if not isinstance(schema, dict):
            raise UnsupportedSchema(f"schema must be an object or boolean, got {schema!r}")
        checks: list[Check] = []
        handled: set[str] = set()
        for key, value in schema.items():
            if key in _ANNOTATIONS or key.startswith("x-"):
                continue
            if key in ("properties", "required", "additionalProperties"):
                if "properties" not in handled:
                    checks.append(self._object(schema))
                    handled.add("properties")
            elif key == "type":
                checks.append(self._type(value))
            elif key == "$ref":
                checks.append(self._ref(value))
            elif key == "enum":
                checks.append(self._enum(value))
            elif key == "const":
                checks.append(self._enum([value]))
            elif key == "items":
                checks.append(self._items(value))
            elif key in ("anyOf", "oneOf", "allOf"):
                checks.append(self._combinator(key, value))
            elif key == "not":
                inner = self.compile(value)
                checks.append(lambda v, inner=inner: not inner(v))
            elif key in ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties"):
                checks.append(self._size(key, value))
            elif key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                checks.append(self._bound(key, value))
            elif key == "pattern":
                regex = re.compile(value)
                checks.append(lambda v, regex=regex: type(v) is not str or regex.search(v) is not None)
            elif key == "format":
                fmt = FORMAT_CHECKS.get(value)
                if fmt is not None:
                    checks.append(fmt)
            else:
                raise UnsupportedSchema(f"keyword {key!r} is not supported by the fast validator")
        if not checks:
            return _always
        if len(checks) == 1:
            return checks[0]
        if len(checks) == 2:
            # The usual pair (a type and its properties): one closure call fewer per value than the loop.
            first, second = checks
            return lambda v: first(v) and second(v)
        frozen = tuple(checks)

        def all_of(v: Any) -> bool:
            # Explicit loops instead of all(<genexpr>) here and below: this is the hot path, and the
            # generator costs ~30% more per call.
            for check in frozen:  # noqa: SIM110
                if not check(v):
                    return False
            return True

        return all_of

    def _ref(self, ref: str) -> Check:
        if ref in self._refs:
            return self._refs[ref]
        if not ref.startswith("#/"):
            raise UnsupportedSchema(f"only local refs are supported, got {ref!r}")
        cell: list[Check] = []
        self._refs[ref] = lambda v: cell[0](v)  # placeholder, so a recursive schema terminates
        target: Any = self._document
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        compiled = self.compile(target)
        cell.append(compiled)
        self._refs[ref] = compiled
        return compiled

    @staticmethod
    def _type(value: str | list[str]) -> Check:
        names = [value] if isinstance(value, str) else list(value)
        unknown = set(names) - set(_SIMPLE_TYPES) - {"number", "integer"}
        if unknown:
            raise UnsupportedSchema(f"unknown type(s) {sorted(unknown)}")
        exact = frozenset(_SIMPLE_TYPES[n] for n in names if n in _SIMPLE_TYPES)
        number = "number" in names
        integer = "integer" in names and not number
        if not number and not integer:
            if len(exact) == 1:
                (only,) = exact
                return lambda v: type(v) is only
            return lambda v: type(v) in exact

        def check(v: Any) -> bool:
            t = type(v)
            if t in exact:
                return True
            if t is int:
                return True
            if t is float:
                return number or v.is_integer()
            return False

        return check

    @staticmethod
    def _enum(values: list[Any]) -> Check:
        if all(isinstance(x, str) for x in values):
            allowed = frozenset(values)
            return lambda v: type(v) is str and v in allowed
        options = list(values)
        return lambda v: any(json_equal(v, option) for option in options)

    def _object(self, schema: dict[str, Any]) -> Check:
        props = {name: self.compile(sub) for name, sub in schema.get("properties", {}).items()}
        required = tuple(schema.get("required", ()))
        extra_schema = schema.get("additionalProperties", True)
        extra: Check | None = None if extra_schema is True else self.compile(extra_schema)

        def check(v: Any) -> bool:
            if type(v) is not dict:
                return True
            for name in required:
                if name not in v:
                    return False
            for name, item in v.items():
                sub = props.get(name)
                if sub is not None:
                    if not sub(item):
                        return False
                elif extra is not None and not extra(item):
                    return False
            return True

        return check

    def _items(self, value: Any) -> Check:
        if not isinstance(value, dict | bool):
            raise UnsupportedSchema("array-form items is not supported")
        inner = self.compile(value)

        def check(v: Any) -> bool:
            if type(v) is not list:
                return True
            for item in v:  # noqa: SIM110
                if not inner(item):
                    return False
            return True

        return check

    def _combinator(self, key: str, value: list[Any]) -> Check:
        subs = tuple(self.compile(s) for s in value)
        if key == "anyOf" and len(value) == 2 and value[1] == {"type": "null"}:
            # What a `nullable` $ref or oneOf converts to (convert_schema): checked once per nullable value.
            inner = subs[0]
            return lambda v: v is None or inner(v)
        if key == "allOf":

            def all_of(v: Any) -> bool:
                for sub in subs:  # noqa: SIM110 - loops, not all(<genexpr>): see compile()
                    if not sub(v):
                        return False
                return True

            return all_of
        if key == "anyOf":

            def any_of(v: Any) -> bool:
                for sub in subs:  # noqa: SIM110
                    if sub(v):
                        return True
                return False

            return any_of

        def one_of(v: Any) -> bool:
            matched = 0
            for sub in subs:
                if sub(v):
                    matched += 1
                    if matched > 1:
                        return False
            return matched == 1

        return one_of

    @staticmethod
    def _size(key: str, limit: int) -> Check:
        kind = list if "Items" in key else str if "Length" in key else dict
        if key.startswith("min"):
            return lambda v: type(v) is not kind or len(v) >= limit
        return lambda v: type(v) is not kind or len(v) <= limit

    @staticmethod
    def _bound(key: str, limit: float) -> Check:
        if key == "minimum":
            return lambda v: not _is_number(v) or v >= limit
        if key == "maximum":
            return lambda v: not _is_number(v) or v <= limit
        if key == "exclusiveMinimum":
            return lambda v: not _is_number(v) or v > limit
        return lambda v: not _is_number(v) or v < limit


# -- validators ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Issue:
    pointer: str  # JSON pointer into the request body
    message: str


def _pointer(parts: Iterator[Any] | list[Any]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _issue(error: ValidationError) -> Issue:
    """Point at the offending member, not its parent, for missing and unexpected properties."""
    path = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [name for name in error.validator_value if name not in error.instance]
        if missing:
            path.append(missing[0])
    elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        extras = [name for name in error.instance if name not in known]
        if extras:
            path.append(extras[0])
    return Issue(_pointer(path), error.message)


class BodyValidator:
    """Validates one operation's request body: fast closures first, jsonschema for anything they doubt."""

    def __init__(self, document: dict[str, Any], ref: str, uri: str, fast: bool = True) -> None:
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        registry: Registry = Registry().with_resource(uri, resource)
        self.ref = ref
        self.schema = {"$ref": f"{uri}{ref}"}
        self.reference = Draft202012Validator(
            self.schema, registry=registry, format_checker=_format_checker()
        )
        self.fast: Check | None = None
        if fast:
            try:
                self.fast = SchemaCompiler(document).compile({"$ref": ref})
            except UnsupportedSchema:
                self.fast = None

    def is_valid(self, instance: Any) -> bool:
        if self.fast is not None and self.fast(instance):
            return True
        return self.reference.is_valid(instance)

    def issues(self, instance: Any, limit: int = 10) -> list[Issue]:
        """[] when valid; otherwise up to `limit` issues, most specific first within each branch."""
        if self.fast is not None and self.fast(instance):
            return []
        found: list[Issue] = []
        for error in self.reference.iter_errors(instance):  # lazy, in document order
            found.append(_issue(best_match([error])))
            if len(found) >= limit:
                break
        return found


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str
    rate_limit: RateLimit | None
    body: BodyValidator | None
    description: str


def load_operations(spec_dir: Path, strict: bool = True, fast: bool = True) -> dict[str, Operation]:
    """Every operation in every *.json spec in `spec_dir`, keyed by operationId."""
    files = sorted(spec_dir.glob("*.json"))
    if not files:
        raise SpecError(f"no OpenAPI documents (*.json) in {spec_dir}")
    operations: dict[str, Operation] = {}
    for file in files:
        spec = loads(file.read_bytes())
        if not str(spec.get("openapi", "")).startswith("3.0"):
            raise SpecError(f"{file}: expected an OpenAPI 3.0 document, got {spec.get('openapi')!r}")
        document = convert_document(spec, strict)
        uri = f"urn:esp-spec:{spec_dir.name}:{file.name}"
        for path, item in spec.get("paths", {}).items():
            for method, op in item.items():
                if not isinstance(op, dict) or "operationId" not in op:
                    continue
                body: BodyValidator | None = None
                content = op.get("requestBody", {}).get("content", {})
                if content:
                    media = content.get("application/vnd.api+json") or next(iter(content.values()))
                    ref = media.get("schema", {}).get("$ref")
                    if not ref:
                        raise SpecError(f"{file}: {op['operationId']} request body is not a $ref")
                    body = BodyValidator(document, ref, uri, fast=fast)
                limits = op.get("x-klaviyo-ratelimit")
                rate = RateLimit.parse(limits["burst"], limits["steady"]) if limits else None
                operations[op["operationId"]] = Operation(
                    op["operationId"], method.upper(), path, rate, body, op.get("description", "")
                )
    return operations


def documented_max(description: str, pattern: str) -> int | None:
    """A limit stated in an operation's prose, e.g. 'Maximum number of profiles per call: 100'."""
    match = re.search(pattern, description)
    return int(match.group(1).replace(",", "")) if match else None
