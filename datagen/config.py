"""Typed configuration of the generator: what to generate, and how dirty the raw data is."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

MAX_CUSTOMERS = 50_000_000


@dataclass(frozen=True)
class DefectRates:
    """Rates of the injected defects. Each is a fraction in [0, 1] of the population named below.

    Counts are exact per chunk of persons (rate times population, stochastically rounded), so a rate lands
    very close to its setting even on small data. Every injected defect is listed in ``_truth/defects``.
    Rows carrying state that the truth depends on (web login/signup events, ESP bounce/unsubscribe/
    spam_complaint events, consent_events, privacy_requests) never get a destructive defect.
    """

    duplicate_person_record: float = 0.02
    """Share of CRM persons that get a second CRM record (half same system with a case/whitespace variant of
    the email and a new ``C`` id, half a legacy-system record with an ``L`` id)."""
    invalid_email: float = 0.01
    """Share of rows of crm_customers, shop_orders and esp_events whose email is syntactically invalid."""
    name_format: float = 0.02
    """Share of crm_customers rows whose first/last name has odd case or stray whitespace."""
    impossible_birth_date: float = 0.005
    """Share of crm_customers rows whose birth_date is in the future or in the year 1800."""
    country_variant: float = 0.03
    """Share of crm_customers rows whose country is not ISO-3166 alpha-2 (USA, Deutschland, u.s.a., ...)."""
    duplicate_order_version: float = 0.01
    """Share of shop_orders rows (order versions) that are delivered a second time, verbatim."""
    test_order: float = 0.005
    """Test orders (email domain ``test.invalid``) added, as a share of real shop_orders rows."""
    negative_amount: float = 0.005
    """Share of shop_orders rows (subtotal or total) and shop_order_lines rows (unit_price) made negative."""
    non_numeric_amount: float = 0.005
    """Share of shop_orders rows (a money column) and shop_order_lines rows (unit_price or quantity) that
    hold a non-numeric value."""
    unknown_currency: float = 0.005
    """Share of shop_orders rows with a currency code that is not in the fx table."""
    orphan_line: float = 0.005
    """Order lines whose order_id is in no shop_orders row, added as a share of real shop_order_lines rows."""
    unknown_product: float = 0.005
    """Share of shop_order_lines rows and of product-carrying web_events (product_view, add_to_cart) whose
    product_id is not in the catalogue."""
    unparseable_timestamp: float = 0.003
    """Share of rows of web_events (event_at), esp_events (event_at), shop_orders (created_at) and
    crm_customers (created_at) whose timestamp cannot be parsed."""
    late_arriving_event: float = 0.01
    """Share of web_events whose received_at is 1-10 days after event_at."""
    future_dated_event: float = 0.002
    """Share of web_events and esp_events whose event_at lies after as_of (broken device clocks)."""
    duplicate_event_delivery: float = 0.01
    """Share of web_events and esp_events delivered a second time with the same event_id (web: half verbatim,
    half with a later received_at; ESP: verbatim)."""
    bot_visitor: float = 0.003
    """Bot visitors (anonymous ids with bot user agents and rapid page views) per person with an email;
    every event of a bot is listed as a defect."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(f"DefectRates.{f.name} must be a number, got {value!r}")
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"DefectRates.{f.name} must be within [0, 1], got {value!r}")

    @classmethod
    def none(cls) -> DefectRates:
        """All defects switched off: clean raw data."""
        return cls(**{f.name: 0.0 for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. The same config always yields byte-identical files."""

    customers: int
    """Persons with an email (customers and prospects). Anonymous visitors and bots come on top."""
    seed: int
    out: Path
    as_of: date = date(2025, 12, 31)
    """Last day of data: raw rows hold instants before ``as_of + 1 day`` 00:00 UTC (defects excepted)."""
    horizon_days: int | None = None
    """If set, simulate (as_of, as_of + horizon_days] and write _truth/future_orders(_details)."""
    format: Literal["parquet", "csv"] = "parquet"
    history_days: int = 1095
    """Days of history before as_of over which persons are acquired."""
    defects: DefectRates = field(default_factory=DefectRates)
    anonymous_share: float = 0.10
    """Anonymous-only web visitors, as a share of ``customers``."""
    email_history_days: int = 182
    """ESP campaigns run weekly over this many days before as_of (about six months; at most history_days)."""
    erasure_share: float = 0.003
    """Share of persons with an email who file a GDPR/CCPA erasure request."""
    access_share: float = 0.005
    """Share of persons with an email who file an access request."""
    products: int | None = None
    """Catalogue size; by default it grows with ``customers`` (200 to 5,000)."""
    rows_per_file: int = 8_000_000
    """A source is split into parts of at most about this many rows."""

    def __post_init__(self) -> None:
        if isinstance(self.customers, bool) or not isinstance(self.customers, int):
            raise ValueError(f"customers must be an integer, got {self.customers!r}")
        if not 1 <= self.customers <= MAX_CUSTOMERS:
            raise ValueError(f"customers must be between 1 and {MAX_CUSTOMERS:,}, got {self.customers:,}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not isinstance(self.out, Path):
            object.__setattr__(self, "out", Path(self.out))
        if isinstance(self.as_of, datetime) or not isinstance(self.as_of, date):
            raise ValueError(f"as_of must be a datetime.date, got {self.as_of!r}")
        if not date(1990, 1, 1) <= self.as_of <= date(2200, 1, 1):
            raise ValueError(f"as_of must be between 1990-01-01 and 2200-01-01, got {self.as_of}")
        if self.horizon_days is not None and (
            isinstance(self.horizon_days, bool)
            or not isinstance(self.horizon_days, int)
            or self.horizon_days < 1
        ):
            raise ValueError(f"horizon_days must be an integer >= 1 when given, got {self.horizon_days!r}")
        if self.horizon_days is not None and self.horizon_days > 3650:
            raise ValueError(f"horizon_days must be at most 3650, got {self.horizon_days}")
        if self.format not in ("parquet", "csv"):
            raise ValueError(f"format must be 'parquet' or 'csv', got {self.format!r}")
        if not isinstance(self.history_days, int) or not 30 <= self.history_days <= 7300:
            raise ValueError(
                f"history_days must be an integer between 30 and 7300, got {self.history_days!r}"
            )
        if not isinstance(self.defects, DefectRates):
            raise ValueError(f"defects must be a DefectRates, got {type(self.defects).__name__}")
        for name in ("anonymous_share", "erasure_share", "access_share"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value!r}")
        if not isinstance(self.email_history_days, int) or not 7 <= self.email_history_days <= 7300:
            raise ValueError(
                f"email_history_days must be an integer between 7 and 7300, got {self.email_history_days!r}"
            )
        if self.products is not None and (
            not isinstance(self.products, int) or not 20 <= self.products <= 500_000
        ):
            raise ValueError(
                f"products must be an integer between 20 and 500,000 when given, got {self.products!r}"
            )
        if not isinstance(self.rows_per_file, int) or self.rows_per_file < 10_000:
            raise ValueError(f"rows_per_file must be an integer >= 10,000, got {self.rows_per_file!r}")


@dataclass(frozen=True)
class Timeline:
    """The instants (Unix seconds, UTC) that bound the simulation."""

    start: int
    """Start of the acquisition history."""
    cutoff: int
    """``as_of + 1 day`` at 00:00 UTC: raw data is strictly before it."""
    end: int
    """End of the simulation: ``cutoff + horizon_days`` (or ``cutoff`` without a horizon)."""
    email_start: int

    @classmethod
    def from_config(cls, config: GeneratorConfig) -> Timeline:
        cutoff_dt = datetime.combine(config.as_of + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        cutoff = int(cutoff_dt.timestamp())
        horizon = config.horizon_days or 0
        return cls(
            start=cutoff - config.history_days * 86_400,
            cutoff=cutoff,
            end=cutoff + horizon * 86_400,
            email_start=cutoff - min(config.email_history_days, config.history_days) * 86_400,
        )
