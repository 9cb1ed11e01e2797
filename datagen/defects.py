"""Defect injection helpers and the defect log that becomes ``_truth/defects``.

Defect codes (``defect_type``) are documented in datagen/README.md. Each injector picks an exact number of
rows (rate times population, stochastically rounded per chunk) so that rates are met closely even on small
data, and records the natural key of every affected raw row.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datagen.schema import ROW_KEY_COLUMNS, TRUTH_SCHEMAS

# defect_type codes
DUPLICATE_PERSON_RECORD = "duplicate_person_record"
INVALID_EMAIL = "invalid_email"
NAME_FORMAT = "name_format"
IMPOSSIBLE_BIRTH_DATE = "impossible_birth_date"
COUNTRY_VARIANT = "country_variant"
DUPLICATE_ORDER_VERSION = "duplicate_order_version"
TEST_ORDER = "test_order"
NEGATIVE_AMOUNT = "negative_amount"
NON_NUMERIC_AMOUNT = "non_numeric_amount"
UNKNOWN_CURRENCY = "unknown_currency"
ORPHAN_LINE = "orphan_line"
UNKNOWN_PRODUCT = "unknown_product"
UNPARSEABLE_TIMESTAMP = "unparseable_timestamp"
LATE_ARRIVING_EVENT = "late_arriving_event"
FUTURE_DATED_EVENT = "future_dated_event"
DUPLICATE_EVENT_DELIVERY = "duplicate_event_delivery"
BOT_TRAFFIC = "bot_traffic"

DEFECT_TYPES: tuple[str, ...] = (
    DUPLICATE_PERSON_RECORD,
    INVALID_EMAIL,
    NAME_FORMAT,
    IMPOSSIBLE_BIRTH_DATE,
    COUNTRY_VARIANT,
    DUPLICATE_ORDER_VERSION,
    TEST_ORDER,
    NEGATIVE_AMOUNT,
    NON_NUMERIC_AMOUNT,
    UNKNOWN_CURRENCY,
    ORPHAN_LINE,
    UNKNOWN_PRODUCT,
    UNPARSEABLE_TIMESTAMP,
    LATE_ARRIVING_EVENT,
    FUTURE_DATED_EVENT,
    DUPLICATE_EVENT_DELIVERY,
    BOT_TRAFFIC,
)

Columns = dict[str, pa.Array]


def exact_count(rate: float, n: int, rng: np.random.Generator) -> int:
    """``rate * n`` rounded stochastically, so the expectation is exact and chunks do not bias it."""
    x = rate * n
    base = int(np.floor(x))
    return base + int(rng.random() < x - base)


def pick(
    rng: np.random.Generator, rate: float, base: int, eligible: np.ndarray | None = None, n: int | None = None
) -> np.ndarray:
    """Sorted row indices: ``rate * base`` rows drawn from ``eligible`` (bool mask), else from ``n`` rows."""
    cand = np.flatnonzero(eligible) if eligible is not None else np.arange(n if n is not None else base)
    k = min(exact_count(rate, base, rng), len(cand))
    if k == 0:
        return np.empty(0, dtype=np.int64)
    return np.sort(rng.choice(cand, size=k, replace=False))


def as_strings(arr: pa.Array) -> pa.Array:
    return arr.cast(pa.string()) if pa.types.is_dictionary(arr.type) else arr


def replace_at(arr: pa.Array, idx: np.ndarray, values: pa.Array) -> pa.Array:
    """``arr`` with ``arr[idx] = values`` (plain or dictionary string arrays; the type is kept)."""
    if len(idx) == 0:
        return arr
    mask = np.zeros(len(arr), dtype=bool)
    mask[idx] = True
    if pa.types.is_dictionary(arr.type):
        # Re-encode rather than append to the dictionary: Parquet output is only byte-stable for
        # dictionaries without duplicate values.
        replaced = pc.replace_with_mask(arr.cast(pa.string()), pa.array(mask), as_strings(values))
        return replaced.dictionary_encode().cast(arr.type)
    return pc.replace_with_mask(arr, pa.array(mask), as_strings(values))


def take_rows(columns: Columns, idx: np.ndarray) -> Columns:
    ind = pa.array(np.asarray(idx, dtype=np.int64))
    return {name: col.take(ind) for name, col in columns.items()}


def append_rows(columns: Columns, extra: Columns) -> Columns:
    out: Columns = {}
    for name, col in columns.items():
        other = extra[name]
        if pa.types.is_dictionary(col.type) or pa.types.is_dictionary(other.type):
            col, other = as_strings(col), as_strings(other)
        out[name] = pa.concat_arrays([col, other.cast(col.type)])
    return out


def row_keys(source: str, columns: Columns, idx: np.ndarray) -> pa.Array:
    ind = pa.array(np.asarray(idx, dtype=np.int64))
    parts = [as_strings(columns[c].take(ind)).fill_null("") for c in ROW_KEY_COLUMNS[source]]
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, "|")


def pool_values(pool: tuple[str, ...], rng: np.random.Generator, k: int) -> pa.Array:
    return pa.array(list(pool), type=pa.string()).take(pa.array(rng.integers(0, len(pool), k)))


def invalid_emails(emails: pa.Array, rng: np.random.Generator) -> pa.Array:
    """Syntactically invalid variants of valid emails: no '@', a space, no dot in the domain, or '@@'."""
    emails = as_strings(emails)
    kind = rng.integers(0, 4, len(emails))
    variants = [
        pc.replace_substring(emails, "@", ""),
        pc.replace_substring(emails, "@", "@ "),
        pc.replace_substring_regex(emails, r"@([a-z]+)\..*$", r"@\1"),
        pc.replace_substring(emails, "@", "@@"),
    ]
    return pc.case_when(pc.make_struct(*[pa.array(kind == k) for k in range(4)]), *variants)


class DefectLog:
    """Collects (source, row_key, defect_type, detail) rows for one chunk."""

    def __init__(self) -> None:
        self._parts: list[pa.Table] = []
        self.counts: dict[tuple[str, str], int] = {}

    def add(
        self, source: str, keys: pa.Array, defect_type: str, detail: str | pa.Array | None = None
    ) -> None:
        n = len(keys)
        if n == 0:
            return
        if detail is None or isinstance(detail, str):
            detail_arr = pa.repeat(pa.scalar(detail, pa.string()), n)
        else:
            detail_arr = as_strings(detail)
        self._parts.append(
            pa.table(
                {
                    "source": pa.repeat(pa.scalar(source, pa.string()), n),
                    "row_key": as_strings(keys),
                    "defect_type": pa.repeat(pa.scalar(defect_type, pa.string()), n),
                    "detail": detail_arr,
                },
                schema=TRUTH_SCHEMAS["defects"],
            )
        )
        key = (source, defect_type)
        self.counts[key] = self.counts.get(key, 0) + n

    def add_rows(
        self,
        source: str,
        columns: Columns,
        idx: np.ndarray,
        defect_type: str,
        detail: str | pa.Array | None = None,
    ) -> None:
        if len(idx):
            self.add(source, row_keys(source, columns, idx), defect_type, detail)

    def table(self) -> pa.Table:
        if not self._parts:
            return TRUTH_SCHEMAS["defects"].empty_table()
        return pa.concat_tables(self._parts)
