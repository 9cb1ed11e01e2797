"""Test infrastructure for the reverse-ETL engine: a stateful ESP emulator with fault injection."""

from reverse_etl.testing.emulator import DEFAULT_KLAVIYO_KEY, DEFAULT_MAILCHIMP_KEY, EspEmulator
from reverse_etl.testing.faults import FaultHandle, FaultInjector, FaultKind, FaultSpec, RejectRule
from reverse_etl.testing.ratelimit import RateLimit

__all__ = [
    "DEFAULT_KLAVIYO_KEY",
    "DEFAULT_MAILCHIMP_KEY",
    "EspEmulator",
    "FaultHandle",
    "FaultInjector",
    "FaultKind",
    "FaultSpec",
    "RateLimit",
    "RejectRule",
]
