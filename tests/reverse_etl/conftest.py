"""Fixtures for the ESP emulator tests: a fresh emulator per test (starting one takes ~10 ms)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from reverse_etl.testing import EspEmulator
from tests.reverse_etl.esp_helpers import klaviyo_session, mailchimp_session


@pytest.fixture
def esp() -> Iterator[EspEmulator]:
    with EspEmulator(job_delay=0.0) as emulator:
        yield emulator


@pytest.fixture
def mc(esp: EspEmulator) -> Iterator[requests.Session]:
    with mailchimp_session(esp) as session:
        yield session


@pytest.fixture
def kl(esp: EspEmulator) -> Iterator[requests.Session]:
    with klaviyo_session(esp) as session:
        yield session
