"""Activation on generated data: esp_audience against the generator's ground truth, tiers, control group,
capping and the segment-history snapshot.

One small dataset is built once with real dbt. The first build runs before any scoring (no ml score
tables), as on a fresh clone; then rule-based fixture scores (tests/dbt/activation_fixture_scores.py) are
written and the activation models and snapshot are rebuilt with the frequency cap lowered to one send, so
that capping actually holds people back in a dataset with weekly campaigns.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from datagen import GeneratorConfig, generate
from personalize.activation_report import activation_summary
from personalize.dbt import run_dbt
from personalize.settings import Settings
from tests.dbt.activation_fixture_scores import write_rule_based_scores

CUSTOMERS = 1_500
SEED = 29
AS_OF = date(2025, 12, 31)
# Ten times the default erasure rate so that a 1,500-person dataset has erased people to exclude.
ERASURE_SHARE = 0.03
CAP_SENDS = 1  # lowered from the default 3: the generator sends at most one campaign a week
ACTIVATION = ["path:dbt_project/models/activation", "customer_segment_history", "offer_rules"]
MERGE_COLUMNS = (
    "first_name", "segment", "ltv_tier", "churn_band",
    *(f"rec_{i}_{part}" for i in (1, 2, 3) for part in ("product_id", "name", "url", "image")),
    "offer",
)  # fmt: skip


@dataclass(frozen=True)
class Build:
    connection: duckdb.DuckDBPyConnection
    raw_dir: Path
    unscored_tiers: list[tuple[str, str, int]]  # (ltv_tier, churn_band, persons) before any scoring
    unscored_segments: dict[str, str]  # person_id -> segment before any scoring


def control_bucket(person_id: str, salt: str = "holdout-v1") -> int:
    """The control-group bucket, re-implemented independently of the SQL macro."""
    return int(hashlib.md5(f"{salt}:{person_id}".encode()).hexdigest()[:8], 16) % 10_000


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Build]:
    root = tmp_path_factory.mktemp("activation")
    raw_dir = root / "raw"
    generate(
        GeneratorConfig(customers=CUSTOMERS, seed=SEED, out=raw_dir, as_of=AS_OF, erasure_share=ERASURE_SHARE)
    )
    settings = Settings(raw_dir=raw_dir, duckdb_path=root / "warehouse.duckdb")
    # Models, seeds and the snapshot without their data tests (other modules test the layers below);
    # the activation build below runs every activation test.
    run_dbt(
        ["build", "--resource-type", "seed", "--resource-type", "model", "--resource-type", "snapshot"],
        settings,
        capture=True,
    )

    with duckdb.connect(str(settings.duckdb_path)) as connection:
        unscored_tiers = connection.sql(
            "select ltv_tier, churn_band, count(*) from activation.customer_score_tiers group by all"
        ).fetchall()
        unscored_segments = dict(
            connection.sql("select person_id, segment from activation.customer_segments").fetchall()
        )
        write_rule_based_scores(connection)
    # Its own target folder: other vars make dbt parse the whole project again, and in the shared folder
    # the next build without them would have to parse it once more.
    run_dbt(
        ["build", "--select", *ACTIVATION, "--target-path", str(root / "target_capped")],
        settings,
        vars_json=json.dumps({"frequency_cap_sends": CAP_SENDS}),
        capture=True,
    )

    connection = duckdb.connect(str(settings.duckdb_path), read_only=True)
    truth = raw_dir / "_truth"
    connection.execute(
        f"create temp view truth_persons as select * from read_parquet('{truth}/persons.parquet')"
    )
    connection.execute(
        f"create temp view truth_identities as select * from read_parquet('{truth}/identities.parquet')"
    )
    yield Build(connection, raw_dir, unscored_tiers, unscored_segments)
    connection.close()


def _rows(build: Build, sql: str) -> list[tuple]:
    return build.connection.sql(sql).fetchall()


def test_build_before_scoring_leaves_everyone_unscored(build: Build) -> None:
    assert build.unscored_tiers == [("unscored", "unscored", len(build.unscored_segments))]
    # Without scores no one can be vip or at_risk_high_value; the behavioural rules still apply.
    assert not {"vip", "at_risk_high_value"} & set(build.unscored_segments.values())
    assert {"prospect", "dormant"} <= set(build.unscored_segments.values())


def test_audience_has_no_opted_out_erased_or_hard_bounced_person_by_truth(build: Build) -> None:
    flags = _rows(
        build,
        """
        select
            count(*) as audience,
            count(truth_persons.true_person_id) as matched,
            sum(case when truth_persons.email_opted_out then 1 else 0 end) as opted_out,
            sum(case when truth_persons.is_erased then 1 else 0 end) as erased,
            sum(case when truth_persons.is_hard_bounced then 1 else 0 end) as hard_bounced
        from activation.esp_audience as audience
        left join truth_identities
            on truth_identities.identifier_type = 'email' and truth_identities.identifier = audience.email
        left join truth_persons
            on truth_identities.true_person_id = truth_persons.true_person_id
        """,
    )[0]
    audience, matched, opted_out, erased, hard_bounced = flags
    assert audience > 300
    assert matched == audience, "every audience email belongs to a true person"
    assert (opted_out, erased, hard_bounced) == (0, 0, 0)
    # The exclusions are real: the dataset has such people with a consent record who would otherwise qualify.
    truth_counts = _rows(
        build,
        """
        select
            sum(case when email_opted_out then 1 else 0 end),
            sum(case when is_erased then 1 else 0 end),
            sum(case when is_hard_bounced then 1 else 0 end)
        from truth_persons
        """,
    )[0]
    assert all(count >= 3 for count in truth_counts), truth_counts


def test_audience_has_only_people_with_a_consent_record_and_an_opt_in(build: Build) -> None:
    wrong = _rows(
        build,
        """
        select audience.person_id, customers.email_consent_status
        from activation.esp_audience as audience
        inner join marts.customer_360 as customers on audience.person_id = customers.person_id
        where customers.email_consent_status is distinct from 'opted_in' or not customers.can_email
        """,
    )
    assert wrong == []


def test_audience_has_no_control_group_member_and_control_is_ten_percent(build: Build) -> None:
    audience_ids = [row[0] for row in _rows(build, "select person_id from activation.esp_audience")]
    assert [p for p in audience_ids if control_bucket(p) < 1_000] == []

    groups = dict(_rows(build, "select person_id, is_control from activation.customer_control_group"))
    assert groups == {person_id: control_bucket(person_id) < 1_000 for person_id in groups}
    share = sum(groups.values()) / len(groups)
    assert abs(share - 0.10) < 3 * math.sqrt(0.09 / len(groups)), share


def test_control_group_is_independent_of_segment(build: Build) -> None:
    rows = _rows(
        build,
        """
        select segments.segment, count(*), avg(case when control.is_control then 1.0 else 0.0 end)
        from activation.customer_segments as segments
        inner join activation.customer_control_group as control on segments.person_id = control.person_id
        group by segments.segment
        """,
    )
    # Within 4 binomial standard deviations of 10% in every segment large enough to say anything.
    off = [(s, n, share) for s, n, share in rows if n >= 50 and abs(share - 0.10) > 4 * math.sqrt(0.09 / n)]
    assert off == []


def test_audience_has_no_capped_person_by_raw_esp_events(build: Build) -> None:
    """Marketing sends in the last 7 days, counted from the raw ESP files and the truth's identities."""
    window_start = AS_OF - timedelta(days=6)
    window_end = AS_OF + timedelta(days=1)
    build.connection.execute(
        f"""
        create or replace temp view truth_recent_sends as
        with raw_sends as (
            select distinct event_id, lower(trim(email)) as email
            from read_parquet('{build.raw_dir}/esp_events/*.parquet')
            where
                event_type = 'sent'
                and nullif(campaign_id, '') is not null
                and try_cast(event_at as timestamptz) >= timestamptz '{window_start} 00:00:00+00'
                and try_cast(event_at as timestamptz) < timestamptz '{window_end} 00:00:00+00'
        )
        select identities.true_person_id, count(*) as sends
        from raw_sends
        inner join truth_identities as identities
            on identities.identifier_type = 'email' and identities.identifier = raw_sends.email
        group by identities.true_person_id
        """
    )
    capped_in_audience = _rows(
        build,
        """
        select audience.person_id, recent.sends
        from activation.esp_audience as audience
        inner join truth_identities as identities
            on identities.identifier_type = 'email' and identities.identifier = audience.email
        inner join truth_recent_sends as recent on identities.true_person_id = recent.true_person_id
        """,
    )
    assert capped_in_audience == []
    # Capping bites: people the cap held back who would otherwise be in the audience.
    capped = _rows(
        build,
        "select count(*) from activation.customer_audience_status "
        "where audience_exclusion_reason = 'frequency_capped'",
    )[0][0]
    truth_capped = _rows(build, "select count(*) from truth_recent_sends")[0][0]
    assert capped > 50
    assert truth_capped >= capped


def test_scores_reach_activation_at_full_precision(build: Build) -> None:
    # The scorer writes doubles; a 32-bit float on the way (dbt.type_float() on DuckDB) would move tier and
    # band cut points between scores that differ past the seventh digit.
    for kind in ("churn", "ltv"):
        compared, different = _rows(
            build,
            f"""
            select count(*), count(*) filter (where activation_scores.{kind}_score != written.score)
            from activation.customer_scores as activation_scores
            inner join ml.{kind}_scores as written using (person_id)
            """,
        )[0]
        assert compared > 0 and different == 0, (kind, compared, different)


def test_ltv_tiers_are_20_30_50_of_scored_people(build: Build) -> None:
    shares = dict(
        _rows(
            build,
            """
            select ltv_tier, count(*) * 1.0 / sum(count(*)) over ()
            from activation.customer_score_tiers
            where ltv_tier != 'unscored'
            group by ltv_tier
            """,
        )
    )
    assert shares.keys() == {"high", "medium", "low"}
    for tier, expected in {"high": 0.20, "medium": 0.30, "low": 0.50}.items():
        assert abs(shares[tier] - expected) <= 0.01, (tier, shares[tier])
    unscored_with_score = _rows(
        build,
        "select count(*) from activation.customer_score_tiers "
        "where (ltv_tier = 'unscored') != (ltv_score is null)",
    )[0][0]
    assert unscored_with_score == 0


def test_every_person_has_exactly_one_segment_and_segments_are_varied(build: Build) -> None:
    persons, segmented, distinct_people = _rows(
        build,
        """
        select
            (select count(*) from marts.persons),
            (select count(*) from activation.customer_segments where segment is not null),
            (select count(distinct person_id) from activation.customer_segments)
        """,
    )[0]
    assert persons == segmented == distinct_people
    segments = dict(_rows(build, "select segment, count(*) from activation.customer_segments group by 1"))
    assert len(segments) >= 7, segments
    assert segments.get("vip", 0) > 0


def test_audience_payload_has_no_empty_slot(build: Build) -> None:
    columns = ", ".join(MERGE_COLUMNS)
    rows = _rows(
        build, f"select person_id, email, {columns}, updated_at, row_hash from activation.esp_audience"
    )
    assert rows
    empty = [row[0] for row in rows if any(value is None or str(value).strip() == "" for value in row)]
    assert empty == []
    # Three different products per person.
    product_ids = [MERGE_COLUMNS.index(f"rec_{i}_product_id") + 2 for i in (1, 2, 3)]
    assert all(len({row[i] for i in product_ids}) == 3 for row in rows)
    greeted = _rows(
        build,
        """
        select count(*) from activation.esp_audience as audience
        inner join marts.customer_360 as customers on audience.person_id = customers.person_id
        where customers.first_name is null and audience.first_name = 'there'
        """,
    )[0][0]
    missing_names = _rows(
        build,
        """
        select count(*) from activation.esp_audience as audience
        inner join marts.customer_360 as customers on audience.person_id = customers.person_id
        where customers.first_name is null
        """,
    )[0][0]
    assert greeted == missing_names


def test_row_hash_tracks_the_merge_fields(build: Build) -> None:
    # Rows with identical email and merge fields would share a hash; distinct rows must not.
    duplicates = _rows(
        build, "select row_hash, count(*) from activation.esp_audience group by 1 having count(*) > 1"
    )
    assert duplicates == []
    by_payload = _rows(
        build,
        f"select count(distinct row_hash), count(distinct (email, {', '.join(MERGE_COLUMNS)})) "
        "from activation.esp_audience",
    )[0]
    assert by_payload[0] == by_payload[1]


def test_segment_history_snapshot_records_moves(build: Build) -> None:
    current = dict(
        _rows(
            build, "select person_id, segment from snapshots.customer_segment_history where exited_at is null"
        )
    )
    segments = dict(_rows(build, "select person_id, segment from activation.customer_segments"))
    assert current == segments
    moved = {p for p, segment in segments.items() if build.unscored_segments.get(p) != segment}
    assert len(moved) > 100  # scores arrived: vip and at_risk_high_value now exist
    closed = dict(
        _rows(
            build,
            "select person_id, segment from snapshots.customer_segment_history where exited_at is not null",
        )
    )
    assert closed == {p: build.unscored_segments[p] for p in moved}


def test_campaign_performance_compares_treatment_and_control(build: Build) -> None:
    rows = _rows(
        build,
        """
        select experiment_group, sum(persons), sum(sends), sum(converted_persons)
        from activation.campaign_performance group by 1 order by 1
        """,
    )
    groups = {group: (persons, sends, converted) for group, persons, sends, converted in rows}
    assert groups.keys() == {"control", "treatment"}
    assert groups["control"][1] == 0 and groups["treatment"][1] >= groups["treatment"][0]
    assert groups["treatment"][2] > 0
    sent_total = _rows(
        build,
        """
        select count(*) from staging.stg_esp__events as esp
        inner join intermediate.int_identity_map as identities
            on identities.identifier_type = 'email' and identities.identifier = esp.email
        inner join activation.customer_control_group as control on identities.person_id = control.person_id
        where esp.event_type = 'sent' and esp.campaign_id is not null and not control.is_control
        """,
    )[0][0]
    assert groups["treatment"][1] == sent_total


def test_run_summary_counts_people_per_segment_and_tier(build: Build) -> None:
    database = build.connection.sql(
        "select path from duckdb_databases() where database_name = current_database()"
    )
    summary = activation_summary(Path(database.fetchall()[0][0]))
    lines = summary.splitlines()
    assert lines[1].split() == ["segment", "high", "medium", "low", "unscored", "total", "audience"]
    rows = {line.split()[0]: [int(v.replace(",", "")) for v in line.split()[1:]] for line in lines[2:]}
    persons = _rows(build, "select count(*) from marts.persons")[0][0]
    audience = _rows(build, "select count(*) from activation.esp_audience")[0][0]
    vip = _rows(build, "select count(*) from activation.customer_segments where segment = 'vip'")[0][0]
    assert rows["all"][4:] == [persons, audience]
    assert rows["vip"][4] == vip
    assert all(sum(values[:4]) == values[4] for values in rows.values())
