"""A model registry in a plain directory.

Layout::

    <model_dir>/
      churn/
        active.json                         {"version": ..., "activated_at": ...}: the promoted model
        churn-20251231-1a2b3c4d/
          model.ubj                         the XGBoost booster (UBJSON)
          short_model.ubj                   the short label window's booster, when it is averaged in
          metadata.json                     ModelMetadata
      ltv/
        ...

Every trained candidate is kept, promoted or not, so a rejected model's metrics and the reason stay on
record. ``active.json`` is replaced atomically (write, then rename), so a reader sees the old or the new
pointer, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import xgboost as xgb

from ml.training import KINDS, Kind

MODEL_FILE = "model.ubj"
SHORT_MODEL_FILE = "short_model.ubj"
METADATA_FILE = "metadata.json"
ACTIVE_FILE = "active.json"
# The per-row base margins a production model can be trained with (ModelMetadata.base_margin).
NO_MARGIN = "none"
SEASONAL_MARGIN = "seasonal_exposure"  # ml.stacking.seasonal_margin
MODEL_MARGINS = (NO_MARGIN, SEASONAL_MARGIN)


class RegistryError(RuntimeError):
    """The registry directory is missing something or holds a file that cannot be read."""


@dataclass(frozen=True)
class ShortModelMetadata:
    """The short label window's model (ml/windows.py), whose scores, mapped from its window to the horizon
    with BG/NBD, are averaged with the main model's: weight x short + (1 - weight) x main."""

    horizon_days: int
    cutoffs: list[str]
    # The short cutoffs whose windows end by the main validation cutoff: the fit whose predictions of the
    # main validation window were averaged into the evaluated ones. (The scoring model's rounds come from
    # its own early stopping at its latest cutoff, as the main model's do.)
    validation_fit_cutoffs: list[str]
    training_rows: int
    rounds: int
    calibration_scale: float
    weight: float
    teaches: list[str]  # the features unseen by the main window's training rows that it learned from


@dataclass(frozen=True)
class ModelMetadata:
    version: str
    kind: Kind
    created_at: str  # ISO-8601 UTC
    cutoffs: list[str]  # every training cutoff, ISO dates; the last one is the validation cutoff
    validation_cutoff: str
    horizon_days: int
    features: list[str]
    training_fingerprint: str
    training_rows: int
    rounds: int
    calibration_scale: float
    params: dict[str, Any]
    metrics: dict[str, dict[str, Any]]  # "xgboost" and each baseline -> metric -> value
    best_baseline: str
    promoted: bool
    reason: str
    unavailable_baselines: dict[str, str] = field(default_factory=dict)
    # The cutoffs the validation fit trained on: label windows ending by the validation cutoff (the scoring
    # model is refit on every cutoff). Empty in metadata written before this was recorded.
    validation_fit_cutoffs: list[str] = field(default_factory=list)
    # The short window's model when it is averaged in (the metrics are then the average's), and why it is
    # or is not. None and "" in metadata written before the production run trained it.
    short_window: ShortModelMetadata | None = None
    short_window_decision: str = ""
    # The per-row base margin both boosters were trained with and must score with: "none", or
    # SEASONAL_MARGIN (ml.stacking.seasonal_margin). "none" in metadata written before it was recorded.
    base_margin: str = NO_MARGIN

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, allow_nan=True)

    @classmethod
    def from_json(cls, text: str) -> ModelMetadata:
        fields = json.loads(text)
        if fields.get("short_window") is not None:
            fields["short_window"] = ShortModelMetadata(**fields["short_window"])
        if fields.get("base_margin", NO_MARGIN) not in MODEL_MARGINS:
            raise ValueError(f"base_margin is {fields['base_margin']!r}, expected one of {MODEL_MARGINS}")
        return cls(**fields)


def make_version(kind: Kind, validation_cutoff: str, fingerprint: str, created_at: datetime) -> str:
    """kind-YYYYMMDD-<8 hex>: the validation cutoff's date, and a hash of data and training time."""
    digest = hashlib.sha256(f"{fingerprint}|{created_at.isoformat()}".encode()).hexdigest()[:8]
    return f"{kind}-{validation_cutoff.replace('-', '')}-{digest}"


def _kind_dir(model_dir: Path, kind: Kind) -> Path:
    if kind not in KINDS:
        raise RegistryError(f"unknown model kind {kind!r}; expected one of {KINDS}")
    return Path(model_dir) / kind


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
        handle.write(text)
        temporary = Path(handle.name)
    os.replace(temporary, path)


def save(
    model_dir: Path, booster: xgb.Booster, metadata: ModelMetadata, short_booster: xgb.Booster | None = None
) -> Path:
    """Store a candidate; when ``metadata.promoted`` it also becomes the active model of its kind.
    ``short_booster``: the short window's model, exactly when ``metadata.short_window`` describes one."""
    if (short_booster is None) != (metadata.short_window is None):
        raise RegistryError(
            f"{metadata.version}: a short-window booster must come with its metadata (short_window), "
            "and the other way round"
        )
    version_dir = _kind_dir(model_dir, metadata.kind) / metadata.version
    if version_dir.exists():
        raise RegistryError(f"{version_dir} already exists: versions are never overwritten")
    version_dir.mkdir(parents=True)
    booster.save_model(str(version_dir / MODEL_FILE))
    if short_booster is not None:
        short_booster.save_model(str(version_dir / SHORT_MODEL_FILE))
    _write_atomically(version_dir / METADATA_FILE, metadata.to_json())
    if metadata.promoted:
        activate(model_dir, metadata.kind, metadata.version)
    return version_dir


def activate(model_dir: Path, kind: Kind, version: str) -> None:
    if not (_kind_dir(model_dir, kind) / version / METADATA_FILE).is_file():
        raise RegistryError(f"cannot activate {kind} version {version!r}: it is not in {model_dir}")
    pointer = {"version": version, "activated_at": datetime.now(UTC).isoformat()}
    _write_atomically(_kind_dir(model_dir, kind) / ACTIVE_FILE, json.dumps(pointer, indent=2))


def active_version(model_dir: Path, kind: Kind) -> str | None:
    """The promoted version of ``kind``, or None when no candidate was ever promoted."""
    pointer = _kind_dir(model_dir, kind) / ACTIVE_FILE
    if not pointer.is_file():
        return None
    try:
        return str(json.loads(pointer.read_text())["version"])
    except (json.JSONDecodeError, KeyError) as exc:
        raise RegistryError(f"{pointer} is not a valid active-model pointer: {exc}") from exc


def load_metadata(model_dir: Path, kind: Kind, version: str) -> ModelMetadata:
    path = _kind_dir(model_dir, kind) / version / METADATA_FILE
    try:
        return ModelMetadata.from_json(path.read_text())
    except FileNotFoundError as exc:
        raise RegistryError(f"no {kind} model version {version!r} in {model_dir}") from exc
    except (json.JSONDecodeError, TypeError, ValueError) as exc:
        raise RegistryError(f"{path} is not valid model metadata: {exc}") from exc


def load_booster(model_dir: Path, kind: Kind, version: str, *, short: bool = False) -> xgb.Booster:
    """The version's booster, or with ``short`` its short window's."""
    path = _kind_dir(model_dir, kind) / version / (SHORT_MODEL_FILE if short else MODEL_FILE)
    if not path.is_file():
        raise RegistryError(f"model file {path} is missing")
    booster = xgb.Booster()
    booster.load_model(str(path))
    return booster


def versions(model_dir: Path, kind: Kind) -> list[ModelMetadata]:
    """Every stored candidate of ``kind``, oldest first."""
    kind_dir = _kind_dir(model_dir, kind)
    if not kind_dir.is_dir():
        return []
    found = [
        load_metadata(model_dir, kind, p.name) for p in kind_dir.iterdir() if (p / METADATA_FILE).is_file()
    ]
    return sorted(found, key=lambda m: (m.created_at, m.version))


def latest(model_dir: Path, kind: Kind) -> ModelMetadata | None:
    """The most recently trained candidate of ``kind``, promoted or not."""
    stored = versions(model_dir, kind)
    return stored[-1] if stored else None
