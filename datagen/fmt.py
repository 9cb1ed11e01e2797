"""Vectorised string formatting straight into Arrow buffers.

Formatting tens of millions of timestamps and ids with Python or ``pc.strftime`` dominates run time, so
values are rendered as fixed-width uint8 character matrices with numpy (table lookups for dates and times
of day) and handed to Arrow as a string array without a per-value Python object.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datagen.schema import DICT_TYPE

_ZERO = ord("0")

# Timestamp renderings: (date/time separator, suffix, UTC offset in seconds). All denote the same instant.
TS_STYLES: tuple[tuple[str, str, int], ...] = (
    ("T", "Z", 0),
    (" ", "+00:00", 0),
    ("T", "+00:00", 0),
    ("T", "-05:00", -5 * 3600),
    (" ", "-05:00", -5 * 3600),
    ("T", "-08:00", -8 * 3600),
    ("T", "+01:00", 3600),
    (" ", "+01:00", 3600),
    ("T", "+02:00", 2 * 3600),
    ("T", "+05:30", 5 * 3600 + 1800),
)
_STYLE_SEP = np.array([ord(s[0]) for s in TS_STYLES], dtype=np.uint8)
_STYLE_OFFSET = np.array([s[2] for s in TS_STYLES], dtype=np.int64)
_STYLE_LEN = np.array([19 + len(s[1]) for s in TS_STYLES], dtype=np.int64)
_STYLE_SUFFIX = np.zeros((len(TS_STYLES), 6), dtype=np.uint8)
for _i, _s in enumerate(TS_STYLES):
    _STYLE_SUFFIX[_i, : len(_s[1])] = np.frombuffer(_s[1].encode(), dtype=np.uint8)


def _time_of_day_table() -> np.ndarray:
    sec = np.arange(86_400)
    parts = (sec // 3600, sec // 60 % 60, sec % 60)
    table = np.full((86_400, 8), ord(":"), dtype=np.uint8)
    for k, part in enumerate(parts):
        table[:, 3 * k] = part // 10 + _ZERO
        table[:, 3 * k + 1] = part % 10 + _ZERO
    return table


_TIME_OF_DAY = _time_of_day_table()


@lru_cache(maxsize=16)
def _day_table(first_day: int, last_day: int) -> np.ndarray:
    """'YYYY-MM-DD' for every epoch day in [first_day, last_day], as an (n, 10) uint8 matrix."""
    days = np.arange(first_day, last_day + 1, dtype=np.int64).astype("datetime64[D]")
    text = np.datetime_as_string(days, unit="D").astype("S10")
    return np.frombuffer(text.tobytes(), dtype=np.uint8).reshape(-1, 10)


def _day_range(days: np.ndarray) -> tuple[int, np.ndarray]:
    lo, hi = int(days.min()), int(days.max())
    # Round the cached range outwards so successive chunks reuse one table.
    lo, hi = lo - lo % 512, hi - hi % 512 + 511
    return lo, _day_table(lo, hi)


def _day_parts(days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """'YYYY-MM-' and 'DD' per epoch day as 8- and 2-byte records (gathers of 8/2 bytes are fast)."""
    lo, table = _day_range(days)
    head = np.ascontiguousarray(table[:, :8]).view("<u8").ravel()
    tail = np.ascontiguousarray(table[:, 8:]).view("<u2").ravel()
    idx = days - lo
    return head[idx], tail[idx]


def fixed_strings(mat: np.ndarray) -> pa.StringArray:
    """One string per row of a C-contiguous (n, width) uint8 matrix."""
    n, width = mat.shape
    offsets = np.arange(0, n * width + 1, width, dtype=np.int64)
    return _from_parts(n, offsets, np.ascontiguousarray(mat).reshape(-1))


def ragged_strings(mat: np.ndarray, start: np.ndarray | int, stop: np.ndarray | int) -> pa.StringArray:
    """One string per row of ``mat``: the bytes in columns [start, stop) of that row."""
    n, width = mat.shape
    cols = np.arange(width)
    start_a = np.broadcast_to(np.asarray(start, dtype=np.int64), (n,))
    stop_a = np.broadcast_to(np.asarray(stop, dtype=np.int64), (n,))
    mask = cols < stop_a[:, None]
    if not (isinstance(start, int) and start == 0):
        mask &= cols >= start_a[:, None]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(stop_a - start_a, out=offsets[1:])
    return _from_parts(n, offsets, mat[mask])


def _from_parts(n: int, offsets: np.ndarray, data: np.ndarray) -> pa.StringArray:
    if offsets[-1] >= 2**31:
        raise ValueError("string column chunk too large for 32-bit offsets; use smaller chunks")
    return pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(np.ascontiguousarray(data, dtype=np.uint8))
    )


# 4-character lookup tables packed into uint32 (little-endian, so the first character comes first in memory).
_DEC4 = np.frombuffer("".join(f"{i:04d}" for i in range(10_000)).encode(), dtype="<u4")
_HEX4 = np.frombuffer("".join(f"{i:04x}" for i in range(65_536)).encode(), dtype="<u4")


def digits_matrix(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits of non-negative ints as an (n, width) uint8 matrix."""
    v = np.asarray(values, dtype=np.int64)
    groups = (width + 3) // 4
    packed = np.empty((len(v), groups), dtype="<u4")
    rest = v
    for k in range(groups - 1, -1, -1):
        packed[:, k] = _DEC4[rest % 10_000]
        rest = rest // 10_000
    return packed.view(np.uint8).reshape(len(v), 4 * groups)[:, 4 * groups - width :]


def padded_ids(values: np.ndarray, prefix: str, width: int) -> pa.StringArray:
    """``prefix`` + zero-padded decimal ``values`` (e.g. C000012345)."""
    n = len(values)
    pre = np.frombuffer(prefix.encode(), dtype=np.uint8)
    mat = np.empty((n, len(pre) + width), dtype=np.uint8)
    mat[:, : len(pre)] = pre
    mat[:, len(pre) :] = digits_matrix(values, width)
    return fixed_strings(mat)


def hex_matrix(values: np.ndarray) -> np.ndarray:
    """16 lowercase hex digits per uint64 (most significant first)."""
    words = np.ascontiguousarray(np.asarray(values, dtype=np.uint64).astype(">u8")).view(">u2").reshape(-1, 4)
    return np.ascontiguousarray(_HEX4[words]).view(np.uint8).reshape(-1, 16)


def hex_ids(values: np.ndarray, prefix: str) -> pa.StringArray:
    """``prefix`` + 16 lowercase hex digits of uint64 ``values``."""
    pre = np.frombuffer(prefix.encode(), dtype=np.uint8)
    mat = np.empty((len(values), len(pre) + 16), dtype=np.uint8)
    mat[:, : len(pre)] = pre
    mat[:, len(pre) :] = hex_matrix(values)
    return fixed_strings(mat)


def uuids(hi: np.ndarray, lo: np.ndarray) -> pa.StringArray:
    """UUID-shaped strings (8-4-4-4-12 hex) from two uint64 halves."""
    mat = np.full((len(hi), 36), ord("-"), dtype=np.uint8)
    h, low = hex_matrix(hi), hex_matrix(lo)
    mat[:, 0:8], mat[:, 9:13], mat[:, 14:18] = h[:, 0:8], h[:, 8:12], h[:, 12:16]
    mat[:, 19:23], mat[:, 24:36] = low[:, 0:4], low[:, 4:16]
    return fixed_strings(mat)


# Packed record of one rendered timestamp; integer fields make the table gathers cheap.
_TS_RECORD = np.dtype(
    [("date", "<u8"), ("day", "<u2"), ("sep", "u1"), ("time", "<u8"), ("suffix4", "<u4"), ("suffix2", "<u2")]
)
_TIME_OF_DAY_U8 = np.ascontiguousarray(_TIME_OF_DAY).view("<u8").ravel()
_STYLE_SUFFIX4 = np.ascontiguousarray(_STYLE_SUFFIX[:, :4]).view("<u4").ravel()
_STYLE_SUFFIX2 = np.ascontiguousarray(_STYLE_SUFFIX[:, 4:]).view("<u2").ravel()


def timestamps(seconds: np.ndarray, style: np.ndarray | None = None) -> pa.StringArray:
    """ISO-8601 renderings of Unix seconds; ``style`` indexes ``TS_STYLES`` (default: UTC with 'Z')."""
    t = np.asarray(seconds, dtype=np.int64)
    n = len(t)
    if n == 0:
        return pa.array([], type=pa.string())
    st = np.zeros(n, dtype=np.intp) if style is None else np.asarray(style, dtype=np.intp)
    local = t + _STYLE_OFFSET[st] if style is not None else t
    days = local // 86_400
    # Whole fields are gathered as opaque byte records, which is much faster than 2-D fancy indexing.
    rec = np.empty(n, dtype=_TS_RECORD)
    month, day = _day_parts(days)
    rec["date"] = month
    rec["day"] = day
    rec["sep"] = _STYLE_SEP[st]
    rec["time"] = _TIME_OF_DAY_U8[local - days * 86_400]
    rec["suffix4"] = _STYLE_SUFFIX4[st]
    rec["suffix2"] = _STYLE_SUFFIX2[st]
    mat = rec.view(np.uint8).reshape(n, 25)
    long = _STYLE_LEN[st] == 25
    if not long.any():
        return fixed_strings(np.ascontiguousarray(mat[:, :20]))
    full = fixed_strings(mat)
    if long.all():
        return full
    # Only two lengths exist, so choosing between two fixed-width arrays beats a byte-level compaction.
    return pc.if_else(pa.array(long), full, fixed_strings(np.ascontiguousarray(mat[:, :20])))


def dates(days: np.ndarray) -> pa.StringArray:
    """'YYYY-MM-DD' for epoch day numbers."""
    d = np.asarray(days, dtype=np.int64)
    if len(d) == 0:
        return pa.array([], type=pa.string())
    lo, table = _day_range(d)
    return fixed_strings(table[d - lo])


def money(cents: np.ndarray) -> pa.StringArray:
    """Decimal strings with two decimals ('-12.30') from integer cents."""
    c = np.asarray(cents, dtype=np.int64)
    n = len(c)
    if n == 0:
        return pa.array([], type=pa.string())
    neg = c < 0
    a = np.abs(c)
    whole, frac = a // 100, a % 100
    width = max(1, len(str(int(whole.max()))))
    ndig = np.ones(n, dtype=np.int64)
    for k in range(1, width):
        ndig += whole >= 10**k
    total = 1 + width + 3
    mat = np.empty((n, total), dtype=np.uint8)
    mat[:, 1 : 1 + width] = digits_matrix(whole, width)
    mat[:, 1 + width] = ord(".")
    mat[:, 2 + width :] = digits_matrix(frac, 2)
    start = 1 + width - ndig - neg
    mat[np.arange(n), start] = np.where(neg, ord("-"), mat[np.arange(n), start])
    return ragged_strings(mat, start, total)


def integers(values: np.ndarray) -> pa.StringArray:
    return pa.array(np.asarray(values, dtype=np.int64)).cast(pa.string())


def dictionary(indices: np.ndarray, vocab: pa.Array, valid: np.ndarray | None = None) -> pa.DictionaryArray:
    """A dictionary-encoded string column: ``vocab[indices]``, null where ``valid`` is False."""
    idx = np.asarray(indices, dtype=np.int32)
    mask = None if valid is None else ~np.asarray(valid, dtype=bool)
    if mask is not None:
        idx = np.where(mask, 0, idx).astype(np.int32)
    return pa.DictionaryArray.from_arrays(pa.array(idx, mask=mask), vocab)


def vocabulary(values: list[str] | tuple[str, ...]) -> pa.StringArray:
    return pa.array(list(values), type=pa.string())


def to_dictionary(arr: pa.Array) -> pa.Array:
    """Dictionary-encode a plain string array (no-op if it already is one)."""
    if pa.types.is_dictionary(arr.type):
        return arr
    return arr.dictionary_encode().cast(DICT_TYPE)


def _scramble(key: int) -> int:
    z = (key + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


def mix64(x: np.ndarray, key: int) -> np.ndarray:
    """SplitMix64 finaliser of ``x ^ scramble(key)``: a bijection on uint64 for a fixed key, so distinct
    inputs give distinct ids; the scrambled key keeps the id sets of different keys (seeds) apart."""
    z = np.asarray(x, dtype=np.uint64) ^ np.uint64(_scramble(key & 0xFFFFFFFFFFFFFFFF))
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))
