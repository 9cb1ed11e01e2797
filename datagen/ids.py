"""Identifier spaces. CRM and shop ids are seeded bijections of the person index, so they are unique but do
not reveal the link between systems (only the email does)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from datagen import fmt

_MOD = 10**9
_MULTIPLIERS = {"C": 387_420_489, "S": 282_475_249, "L": 410_338_673}  # coprime with 10**9
DUPLICATE_OFFSET = 500_000_000  # same-system duplicate CRM records use person index + this
ORPHAN_ORDER_BASE = 9_000_000_000  # order ids of orphan lines (real order ids stay far below)


def _perm(idx: np.ndarray, system: str, seed: int) -> np.ndarray:
    offset = int(fmt.mix64(np.array([seed], dtype=np.uint64), ord(system))[0] % np.uint64(_MOD))
    return (np.asarray(idx, dtype=np.int64) * _MULTIPLIERS[system] + offset) % _MOD


def crm_ids(idx: np.ndarray, seed: int) -> pa.StringArray:
    return fmt.padded_ids(_perm(idx, "C", seed), "C", 9)


def crm_duplicate_ids(idx: np.ndarray, seed: int) -> pa.StringArray:
    return fmt.padded_ids(_perm(np.asarray(idx, dtype=np.int64) + DUPLICATE_OFFSET, "C", seed), "C", 9)


def legacy_crm_ids(idx: np.ndarray, seed: int) -> pa.StringArray:
    return fmt.padded_ids(_perm(idx, "L", seed), "L", 9)


def shop_ids(idx: np.ndarray, seed: int) -> pa.StringArray:
    return fmt.padded_ids(_perm(idx, "S", seed), "S", 9)


def order_ids(serial: np.ndarray) -> pa.StringArray:
    return fmt.padded_ids(serial, "O", 10)


def event_ids(chunk: int, local: np.ndarray, namespace: int, seed: int, prefix: str) -> pa.StringArray:
    """Unique hex event ids: a bijective mix of (namespace, chunk, local serial)."""
    raw = (
        (np.uint64(namespace) << np.uint64(60))
        | (np.uint64(chunk) << np.uint64(36))
        | np.asarray(local, dtype=np.uint64)
    )
    return fmt.hex_ids(fmt.mix64(raw, seed * 7919 + namespace), prefix)


def anonymous_ids(device: np.ndarray, seed: int) -> pa.StringArray:
    """UUID-like anonymous ids; the high half is a bijection of the device number, so they are unique."""
    d = np.asarray(device, dtype=np.uint64)
    return fmt.uuids(fmt.mix64(d, seed * 31 + 1), fmt.mix64(d, seed * 31 + 2))
