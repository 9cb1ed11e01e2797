"""The raw data contract (DESIGN.md, "Raw data contract"): source names and their columns, in order.

Every raw column is a string. Columns listed in ``DICTIONARY_COLUMNS`` are built as Arrow dictionary
arrays because they repeat a lot; that only speeds up Parquet writing. The files are written without the
Arrow schema, so every reader (DuckDB, pyarrow, pandas) sees plain VARCHAR / string columns.
"""

from __future__ import annotations

import pyarrow as pa

RAW_COLUMNS: dict[str, tuple[str, ...]] = {
    "crm_customers": (
        "customer_id",
        "email",
        "first_name",
        "last_name",
        "phone",
        "birth_date",
        "gender",
        "country",
        "city",
        "postal_code",
        "created_at",
        "updated_at",
    ),
    "shop_orders": (
        "order_id",
        "customer_id",
        "email",
        "status",
        "currency",
        "subtotal",
        "discount",
        "shipping",
        "tax",
        "total",
        "created_at",
        "updated_at",
    ),
    "shop_order_lines": ("order_line_id", "order_id", "product_id", "quantity", "unit_price"),
    "products": (
        "product_id",
        "sku",
        "name",
        "category",
        "brand",
        "price",
        "currency",
        "is_active",
        "image_url",
        "product_url",
        "updated_at",
    ),
    "web_events": (
        "event_id",
        "anonymous_id",
        "user_id",
        "event_type",
        "product_id",
        "url",
        "search_query",
        "user_agent",
        "event_at",
        "received_at",
    ),
    "esp_events": (
        "event_id",
        "email",
        "campaign_id",
        "event_type",
        "bounce_type",
        "url",
        "user_agent",
        "event_at",
    ),
    "consent_events": ("email", "customer_id", "channel", "status", "source", "event_at"),
    "privacy_requests": ("request_id", "email", "request_type", "requested_at"),
}
SOURCES: tuple[str, ...] = tuple(RAW_COLUMNS)

# Natural key of a raw row, as used in _truth/defects.row_key (parts joined with "|").
ROW_KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "crm_customers": ("customer_id", "updated_at"),
    "shop_orders": ("order_id", "updated_at"),
    "shop_order_lines": ("order_line_id",),
    "products": ("product_id", "updated_at"),
    "web_events": ("event_id",),
    "esp_events": ("event_id",),
    "consent_events": ("email", "channel", "event_at"),
    "privacy_requests": ("request_id",),
}

DICTIONARY_COLUMNS: dict[str, frozenset[str]] = {
    "crm_customers": frozenset({"first_name", "last_name", "gender", "country", "city"}),
    "shop_orders": frozenset({"status", "currency"}),
    "shop_order_lines": frozenset({"product_id"}),
    "products": frozenset({"category", "brand", "currency", "is_active"}),
    "web_events": frozenset(
        {"anonymous_id", "user_id", "event_type", "product_id", "url", "search_query", "user_agent"}
    ),
    "esp_events": frozenset({"email", "campaign_id", "event_type", "bounce_type", "url", "user_agent"}),
    "consent_events": frozenset({"channel", "status", "source"}),
    "privacy_requests": frozenset({"request_type"}),
}

DICT_TYPE = pa.dictionary(pa.int32(), pa.string())


def raw_schema(source: str) -> pa.Schema:
    """Arrow schema used while writing ``source`` (dictionary columns are still strings on disk)."""
    dict_cols = DICTIONARY_COLUMNS[source]
    return pa.schema([(c, DICT_TYPE if c in dict_cols else pa.string()) for c in RAW_COLUMNS[source]])


TS = pa.timestamp("s", tz="UTC")

TRUTH_SCHEMAS: dict[str, pa.Schema] = {
    "identities": pa.schema(
        [
            ("true_person_id", pa.string()),
            ("identifier_type", pa.string()),
            ("identifier", pa.string()),
        ]
    ),
    "persons": pa.schema(
        [
            ("true_person_id", pa.string()),
            ("person_type", pa.string()),
            ("email", pa.string()),
            ("has_shop_account", pa.bool_()),
            ("is_guest_only", pa.bool_()),
            ("is_bot", pa.bool_()),
            ("in_crm", pa.bool_()),
            ("country", pa.string()),
            ("acquired_at", TS),
            ("purchase_rate_per_year", pa.float64()),
            ("dropout_rate_per_year", pa.float64()),
            ("death_at", TS),
            ("is_alive_at_as_of", pa.bool_()),
            ("spend_nu", pa.float64()),
            ("expected_order_value_usd", pa.float64()),
            ("email_engagement", pa.float64()),
            ("preferred_category", pa.string()),
            ("uses_apple_mail", pa.bool_()),
            ("n_devices", pa.int64()),
            ("orders_before_as_of", pa.int64()),
            ("email_opted_out", pa.bool_()),
            ("is_erased", pa.bool_()),
            ("is_hard_bounced", pa.bool_()),
        ]
    ),
    "defects": pa.schema(
        [
            ("source", pa.string()),
            ("row_key", pa.string()),
            ("defect_type", pa.string()),
            ("detail", pa.string()),
        ]
    ),
    "future_orders": pa.schema(
        [
            ("true_person_id", pa.string()),
            ("future_order_count", pa.int64()),
            ("future_order_value", pa.float64()),
        ]
    ),
    "future_order_details": pa.schema(
        [
            ("true_person_id", pa.string()),
            ("order_id", pa.string()),
            ("order_at", TS),
            ("status", pa.string()),
            ("value", pa.float64()),
            ("product_ids", pa.string()),
        ]
    ),
    "fx_rates": pa.schema([("currency", pa.string()), ("units_per_usd", pa.float64())]),
}

# What "valid email" means throughout: after trim + lowercase, it matches this. Every email the invalid_email
# defect produces fails it; every other email in the raw data passes.
VALID_EMAIL_PATTERN = r"^[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)+$"
