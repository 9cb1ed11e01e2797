"""Synthetic multi-source data generator for the email-personalization warehouse.

    from datagen import GeneratorConfig, DefectRates, generate
    summary = generate(GeneratorConfig(customers=20_000, seed=7, out=Path("data/raw"), horizon_days=90))

writes the eight raw sources of the DESIGN.md contract to ``out/<source>/part-*.parquet|csv`` and the
ground truth to ``out/_truth/``. See datagen/README.md for the model, the truth tables and the defect codes.
"""

from datagen.config import DefectRates, GeneratorConfig
from datagen.generator import GenerationSummary, generate
from datagen.schema import RAW_COLUMNS, SOURCES

__all__ = ["RAW_COLUMNS", "SOURCES", "DefectRates", "GenerationSummary", "GeneratorConfig", "generate"]
