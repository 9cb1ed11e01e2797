"""Properties over random audiences and consent histories: Mailchimp in mirror mode always holds exactly the
latest audience and never anyone erased; Klaviyo only ever subscribes consenting people, once, when new."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reverse_etl.engine import erase, sync
from reverse_etl.models import IDENTITY_FIELDS, SyncConfig, SyncMode
from reverse_etl.testing import EspEmulator, FaultKind, FaultSpec
from tests.reverse_etl.sync_fixtures import (
    LIST_ID,
    expected_merge_fields,
    klaviyo,
    mailchimp,
    mailchimp_config,
    members,
    person,
    write_audience,
)

PEOPLE = range(8)

# One step: who is in the audience (id -> version of their merge fields), whether to erase someone who is
# not, and whether the ESP answers the first batch with a 503.
step = st.tuples(
    st.dictionaries(st.sampled_from(PEOPLE), st.integers(0, 2), max_size=len(PEOPLE)),
    st.one_of(st.none(), st.sampled_from(PEOPLE)),
    st.booleans(),
)


def test_mirror_mode_matches_the_latest_audience(monkeypatch: pytest.MonkeyPatch) -> None:
    with EspEmulator() as esp:
        monkeypatch.setenv("MAILCHIMP_API_KEY", esp.mailchimp_api_key)

        @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(st.lists(step, min_size=1, max_size=4))
        def check(steps: list[tuple[dict[int, int], int | None, bool]]) -> None:
            esp.reset()
            con = duckdb.connect(":memory:")
            config = mailchimp_config(SyncMode.MIRROR)
            erased: set[int] = set()
            ever: set[int] = set()
            try:
                for versions, to_erase, fault in steps:
                    # Erased people never appear in the audience again (the dbt model drops them).
                    if to_erase is not None and to_erase not in versions and to_erase not in erased:
                        erase(con, config, mailchimp(esp), [person(to_erase)["email"]])
                        erased.add(to_erase)
                    rows = [
                        person(i, offer=f"v{v}", first_name=f"N{i}-{v}")
                        for i, v in sorted(versions.items())
                        if i not in erased
                    ]
                    write_audience(con, rows)
                    if fault:
                        esp.faults.queue(FaultSpec(FaultKind.UNAVAILABLE, path_prefix="/3.0/lists", count=1))
                    result = sync(con, config, mailchimp(esp))
                    assert result.outcome == "success"
                    ever = (ever | set(versions)) - erased
                    assert members(esp) == expected_merge_fields(rows)
                    present = {r["person_id"] for r in rows}
                    for i in ever:
                        member = esp.mailchimp.member(LIST_ID, person(i)["email"])
                        assert member is not None
                        assert member.archived == (person(i)["person_id"] not in present)
                    for i in erased:
                        assert esp.mailchimp.member(LIST_ID, person(i)["email"]) is None
                    assert esp.mailchimp.consent_changes() == []
                    assert set(esp.mailchimp.creates.values()) <= {1}
            finally:
                con.close()

        check()


# One step of a Klaviyo history: consent events (person -> opted in?), whether to erase someone who is
# opted out, and whether the first import request of the run gets a 503.
consent_step = st.tuples(
    st.dictionaries(st.sampled_from(PEOPLE), st.booleans(), max_size=len(PEOPLE)),
    st.one_of(st.none(), st.sampled_from(PEOPLE)),
    st.integers(0, 2),
    st.booleans(),
)


def test_klaviyo_subscribes_only_consenting_new_people_over_consent_histories(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with EspEmulator(job_delay=0.0, klaviyo_rate_limits=False) as esp:
        monkeypatch.setenv("KLAVIYO_API_KEY", esp.klaviyo_api_key)

        @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(st.lists(consent_step, min_size=1, max_size=5))
        def check(steps: list[tuple[dict[int, bool], int | None, int, bool]]) -> None:
            esp.reset()
            con = duckdb.connect(":memory:")
            # esp_audience is consent-gated upstream: the latest consent event wins, erased people are out.
            config = SyncConfig(destination="klaviyo", fields=IDENTITY_FIELDS, consent_gated=True)
            opted_in: set[int] = set()
            erased: set[int] = set()
            subscribes_allowed: dict[str, int] = {}
            try:
                for events, to_erase, version, fault in steps:
                    for i, consent in events.items():
                        (opted_in.add if consent else opted_in.discard)(i)
                    if to_erase is not None and to_erase not in opted_in and to_erase not in erased:
                        erase(con, config, klaviyo(esp), [person(to_erase)["email"]])
                        assert esp.wait_idle()
                        erased.add(to_erase)
                    audience = sorted(opted_in - erased)
                    rows = [person(i, offer=f"v{version}") for i in audience]
                    write_audience(con, rows)
                    before = len(esp.klaviyo.subscription_changes)
                    if fault:
                        esp.faults.queue(
                            FaultSpec(FaultKind.UNAVAILABLE, path_prefix="/api/profile-bulk", count=1)
                        )
                    result = sync(con, config, klaviyo(esp))
                    assert result.outcome == "success"
                    assert esp.wait_idle()
                    emails = {r["email"] for r in rows}
                    new_changes = esp.klaviyo.subscription_changes[before:]
                    # Consent is only ever granted, only through bulk subscribe, only to people who are
                    # opted in right now and were never subscribed since they were last erased.
                    for change in new_changes:
                        assert change.new == "SUBSCRIBED" and change.email in emails
                        subscribes_allowed[change.email] = subscribes_allowed.get(change.email, 0) + 1
                    profiles = esp.klaviyo.profiles()
                    for i in audience:
                        profile = profiles[person(i)["email"]]
                        assert profile.properties["offer"] == f"v{version}"
                    for i in erased:
                        assert person(i)["email"] not in profiles
                    # Everyone in the audience was subscribed exactly once: opting out and back in later
                    # does not subscribe again (the profile was never unsubscribed by a sync either).
                    assert all(subscribes_allowed[person(i)["email"]] == 1 for i in audience)
                    assert max(subscribes_allowed.values(), default=1) == 1
                    assert set(esp.klaviyo.creates.values()) <= {1}
            finally:
                con.close()

        check()
