"""Property: in mirror mode the ESP always holds exactly the latest audience, and never anyone removed."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reverse_etl.engine import erase, sync
from reverse_etl.models import SyncMode
from reverse_etl.testing import EspEmulator, FaultKind, FaultSpec
from tests.reverse_etl.sync_fixtures import (
    LIST_ID,
    expected_merge_fields,
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
