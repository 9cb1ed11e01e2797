"""Per-chunk state shared by the source generators."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from datagen.catalogue import Catalogue
from datagen.config import GeneratorConfig, Timeline
from datagen.defects import DefectLog
from datagen.persons import Persons


@dataclass
class Seen:
    """Which identifiers of the chunk's persons actually appear in raw rows (for _truth/identities)."""

    email: np.ndarray  # bool per person: the email appears in a valid form somewhere
    shop_id: np.ndarray  # bool per person
    device: np.ndarray  # bool (persons, MAX_DEVICES)
    crm: list[tuple[pa.Array, np.ndarray]] = field(default_factory=list)  # (customer ids, local person idx)


@dataclass
class Chunk:
    index: int
    lo: int
    hi: int
    persons: Persons
    catalogue: Catalogue
    config: GeneratorConfig
    tl: Timeline
    rng: np.random.Generator
    log: DefectLog
    emails: pa.StringArray  # canonical email per chunk person (null without one)
    seen: Seen

    @property
    def size(self) -> int:
        return self.hi - self.lo

    @property
    def idx(self) -> np.ndarray:
        return np.arange(self.lo, self.hi, dtype=np.int64)

    @property
    def seed(self) -> int:
        return self.config.seed

    def style(self, mix: np.ndarray, n: int) -> np.ndarray:
        """Timestamp rendering styles (indices into fmt.TS_STYLES) drawn from ``mix``."""
        return self.rng.choice(len(mix), size=n, p=mix / mix.sum()).astype(np.int8)
