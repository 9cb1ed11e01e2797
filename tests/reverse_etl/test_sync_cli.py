"""`personalize sync`: settings from env vars, the file destination end to end, dry run, --full, errors."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from personalize.cli import main
from reverse_etl.configure import DestinationSettings, MissingSetting, settings_from_env
from reverse_etl.models import MAILCHIMP_FIELDS
from reverse_etl.state import StateStore
from reverse_etl.testing import EspEmulator
from tests.reverse_etl.esp_helpers import batch, mailchimp_session, member
from tests.reverse_etl.sync_fixtures import LIST_ID, REVISION, expected_merge_fields, members, people, person
from tests.reverse_etl.sync_fixtures import write_audience as _write_audience

SECRET = "do-not-print-me-0123456789-us21"
DESTINATION_VARS = (
    "MAILCHIMP_API_KEY",
    "MAILCHIMP_LIST_ID",
    "MAILCHIMP_BASE_URL",
    "MAILCHIMP_SERVER_PREFIX",
    "KLAVIYO_API_KEY",
    "KLAVIYO_LIST_ID",
    "KLAVIYO_BASE_URL",
    "KLAVIYO_REVISION",
)


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty environment but for the warehouse and export paths of this test."""
    for name in DESTINATION_VARS:
        monkeypatch.delenv(name, raising=False)
    db = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("PERSONALIZE_DUCKDB_PATH", str(db))
    monkeypatch.setenv("PERSONALIZE_EXPORT_DIR", str(tmp_path / "exports"))
    return db


@pytest.fixture
def esp() -> Iterator[EspEmulator]:
    with EspEmulator(job_delay=0.0, klaviyo_rate_limits=False) as emulator:
        yield emulator


def use_mailchimp_emulator(monkeypatch: pytest.MonkeyPatch, esp: EspEmulator) -> None:
    """Point `personalize sync --destination mailchimp` at the emulator's list, as a user's env vars would."""
    monkeypatch.setenv("MAILCHIMP_API_KEY", esp.mailchimp_api_key)
    monkeypatch.setenv("MAILCHIMP_LIST_ID", LIST_ID)
    monkeypatch.setenv("MAILCHIMP_BASE_URL", esp.mailchimp_url)


def use_klaviyo_emulator(monkeypatch: pytest.MonkeyPatch, esp: EspEmulator) -> None:
    monkeypatch.setenv("KLAVIYO_API_KEY", esp.klaviyo_api_key)
    monkeypatch.setenv("KLAVIYO_LIST_ID", "KL1")
    monkeypatch.setenv("KLAVIYO_BASE_URL", esp.base_url)
    monkeypatch.setenv("KLAVIYO_REVISION", REVISION)


def write_audience(db: Path, rows: list[dict[str, object]]) -> None:
    con = duckdb.connect(str(db))
    try:
        _write_audience(con, rows)
    finally:
        con.close()


def summary(out: str) -> dict[str, str]:
    """The summary table's rows: label -> value."""
    table: dict[str, str] = {}
    for line in out.splitlines():
        parts = line.strip().rsplit(None, 1)
        if line.startswith("  ") and len(parts) == 2:
            table[parts[0]] = parts[1]
    return table


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_file_destination_end_to_end(
    warehouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = people(range(40))
    write_audience(warehouse, rows)
    exports = tmp_path / "exports"

    assert main(["sync", "--destination", "file"]) == 0
    out, err = capsys.readouterr()
    first = summary(out)
    assert out.startswith("sync to file (mirror): success")
    assert (first["inserts"], first["sent"], first["confirmed"], first["failed"]) == ("40", "40", "40", "0")
    assert "duration" in out and "file: 40/40 sent" in err  # progress on stderr, the table on stdout
    written = _csv(exports / "audience.csv")
    assert [r["key"] for r in written] == [r["person_id"] for r in rows]
    assert written[5]["rec_3_product_id"] == rows[5]["rec_3_product_id"]

    assert main(["sync", "--destination", "file"]) == 0  # nothing changed: nothing sent
    assert (summary(capsys.readouterr().out)["sent"], len(list(exports.glob("audience_changes_*")))) == (
        "0",
        2,
    )

    rows[3] = person(3, rec_1_product_id="sku-9999")
    write_audience(warehouse, rows[:-1])  # one change, one leaver
    assert main(["sync", "--destination", "file"]) == 0
    third = summary(capsys.readouterr().out)
    assert (third["changes"], third["removals"], third["sent"]) == ("1", "1", "1")
    assert _csv(exports / "audience.csv")[3]["rec_1_product_id"] == "sku-9999"

    assert main(["sync", "--destination", "file", "--full"]) == 0
    full = summary(capsys.readouterr().out)
    assert (full["inserts"], full["resends (--full)"], full["sent"]) == ("0", "39", "39")
    con = duckdb.connect(str(warehouse))
    assert [r[3] for r in StateStore(con).runs("file")] == ["success"] * 4
    con.close()


def test_dry_run_sends_nothing_and_prints_no_email(
    warehouse: Path, esp: EspEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = people(range(12))
    write_audience(warehouse, rows)
    use_mailchimp_emulator(monkeypatch, esp)

    assert main(["sync", "--destination", "mailchimp", "--dry-run"]) == 0
    out, err = capsys.readouterr()
    table = summary(out)
    assert out.startswith("dry run of the sync to mailchimp:L1 (mirror): dry_run")
    assert (table["inserts"], table["sent"]) == ("12", "0")
    assert '"REC1_ID": "sku-' in out and '"status_if_new": "subscribed"' in out  # sample payloads
    assert "@example.com" not in out + err  # emails show as digests
    assert esp.stats.snapshot().requests.total() == 0
    assert esp.mailchimp.members(LIST_ID) == {}

    assert main(["sync", "--destination", "mailchimp"]) == 0  # the real run after it
    assert summary(capsys.readouterr().out)["confirmed"] == "12"
    assert members(esp) == expected_merge_fields(rows)


@pytest.mark.parametrize(
    ("destination", "list_var"), [("mailchimp", "MAILCHIMP_LIST_ID"), ("klaviyo", "KLAVIYO_LIST_ID")]
)
def test_a_dry_run_needs_no_api_key_but_a_real_run_does(
    warehouse: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    destination: str,
    list_var: str,
) -> None:
    # Marketing operations can preview what a first sync would send before anyone hands them the key.
    write_audience(warehouse, people(range(5)))
    monkeypatch.setenv(list_var, LIST_ID)

    assert main(["sync", "--destination", destination, "--dry-run"]) == 0
    table = summary(capsys.readouterr().out)
    assert (table["inserts"], table["sent"]) == ("5", "0")

    assert main(["sync", "--destination", destination]) == 2
    assert f"environment variable {destination.upper()}_API_KEY is not set" in capsys.readouterr().err


def test_mailchimp_full_resync_updates_everyone_without_duplicates(
    warehouse: Path, esp: EspEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = people(range(30))
    write_audience(warehouse, rows)
    use_mailchimp_emulator(monkeypatch, esp)
    assert main(["sync", "--destination", "mailchimp"]) == 0
    # Someone edits a member by hand in Mailchimp: only a full resync puts the warehouse's values back.
    with mailchimp_session(esp) as session:
        edit = batch([member("user4@example.com", merge_fields={"OFFER": "EDITED"})])
        session.post(f"{esp.mailchimp_url}/lists/{LIST_ID}", json=edit).raise_for_status()
    assert main(["sync", "--destination", "mailchimp"]) == 0
    assert esp.mailchimp.member(LIST_ID, "user4@example.com").merge_fields["OFFER"] == "EDITED"

    assert main(["sync", "--destination", "mailchimp", "--full"]) == 0
    table = summary(capsys.readouterr().out.split("sync to mailchimp")[-1])
    assert (table["inserts"], table["resends (--full)"], table["confirmed"]) == ("0", "30", "30")
    assert members(esp) == expected_merge_fields(rows)
    assert set(esp.mailchimp.creates.values()) == {1}  # upserts by subscriber hash: no second create
    assert esp.mailchimp.status_changes == []


def test_klaviyo_subscribes_new_people_of_the_consent_gated_audience_once(
    warehouse: Path, esp: EspEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = people(range(10))
    write_audience(warehouse, rows)
    use_klaviyo_emulator(monkeypatch, esp)
    assert main(["sync", "--destination", "klaviyo"]) == 0
    assert main(["sync", "--destination", "klaviyo", "--full"]) == 0
    out = capsys.readouterr().out
    assert "sync to klaviyo:KL1 (upsert): success" in out
    assert esp.wait_idle()
    assert set(esp.klaviyo.profiles()) == {r["email"] for r in rows}
    assert (
        esp.klaviyo.profile("user7@example.com").properties["rec_2_product_id"] == rows[7]["rec_2_product_id"]
    )
    # Everyone in esp_audience consented; each is subscribed once, when new (a full resync adds nothing).
    assert sorted(c.email for c in esp.klaviyo.subscription_changes) == sorted(r["email"] for r in rows)
    assert set(esp.klaviyo.creates.values()) == {1}


@pytest.mark.parametrize(
    ("destination", "present", "missing"),
    [
        ("mailchimp", {}, "MAILCHIMP_API_KEY"),
        ("mailchimp", {"MAILCHIMP_API_KEY": SECRET}, "MAILCHIMP_LIST_ID"),
        ("klaviyo", {"KLAVIYO_LIST_ID": "KL1"}, "KLAVIYO_API_KEY"),
        ("klaviyo", {"KLAVIYO_API_KEY": SECRET}, "KLAVIYO_LIST_ID"),
    ],
)
def test_a_missing_variable_is_one_line_naming_it(
    warehouse: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    destination: str,
    present: dict[str, str],
    missing: str,
) -> None:
    write_audience(warehouse, people(range(2)))
    for name, value in present.items():
        monkeypatch.setenv(name, value)
    assert main(["sync", "--destination", destination]) == 2
    out, err = capsys.readouterr()
    assert err == f"personalize sync: error: environment variable {missing} is not set\n"
    assert out == "" and SECRET not in err


def test_a_missing_audience_says_to_run_first(warehouse: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sync", "--destination", "file"]) == 2  # no warehouse file at all
    assert "run `personalize run` first" in capsys.readouterr().err
    assert not warehouse.exists()  # not created by the attempt
    duckdb.connect(str(warehouse)).close()  # a warehouse without the audience
    assert main(["sync", "--destination", "file"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"personalize sync: error: no activation.esp_audience in {warehouse}: run `personalize run` first\n"
    )


def test_settings_from_env_server_prefix_and_state_key() -> None:
    env = {"MAILCHIMP_API_KEY": "abc-us21", "MAILCHIMP_LIST_ID": "L9"}
    settings = settings_from_env("mailchimp", env)
    assert (settings.base_url, settings.state_key) == ("https://us21.api.mailchimp.com/3.0", "mailchimp:L9")
    prefixed = settings_from_env("mailchimp", {**env, "MAILCHIMP_SERVER_PREFIX": "us5"})
    assert prefixed.base_url == "https://us5.api.mailchimp.com/3.0"
    with pytest.raises(MissingSetting, match="MAILCHIMP_SERVER_PREFIX") as raised:
        settings_from_env("mailchimp", {"MAILCHIMP_API_KEY": SECRET[:-5], "MAILCHIMP_LIST_ID": "L9"})
    assert SECRET[:-5] not in str(raised.value)
    assert settings_from_env("file", {}, export_dir=Path("/x")) == DestinationSettings(
        "file", export_dir=Path("/x")
    )


def test_mailchimp_merge_tags_fit_the_vendor_limit() -> None:
    tags = [m.field for m in MAILCHIMP_FIELDS]
    assert all(len(t) <= 10 and t.replace("_", "").isalnum() and t.isupper() for t in tags)
    assert {"REC1_ID", "REC2_ID", "REC3_ID"} <= set(tags) and len(set(tags)) == len(tags)


def test_an_audience_without_a_mapped_column_is_named(
    warehouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_audience(warehouse, people(range(3)))
    con = duckdb.connect(str(warehouse))
    con.execute("alter table activation.esp_audience drop column rec_2_product_id")
    con.close()
    assert main(["sync", "--destination", "file"]) == 2
    assert capsys.readouterr().err == (
        f"personalize sync: error: activation.esp_audience in {warehouse} has no column rec_2_product_id: "
        "rebuild it with `personalize run`\n"
    )


def write_erasures(db: Path, emails: list[str]) -> None:
    """activation.esp_erasures as dbt builds it: the addresses to erase at every destination."""
    con = duckdb.connect(str(db))
    try:
        con.execute("create schema if not exists activation")
        con.execute(
            "create or replace table activation.esp_erasures as "
            "select unnest(?::varchar[]) as email, null::varchar as person_id, now() as requested_at",
            [emails],
        )
    finally:
        con.close()


def _erasures(db: Path) -> list[tuple[str, str]]:
    con = duckdb.connect(str(db))
    try:
        return con.execute(
            "select destination, outcome from reverse_etl.erasures order by destination, outcome"
        ).fetchall()
    finally:
        con.close()


def test_erasure_requests_are_deleted_at_mailchimp_once_before_the_sync(
    warehouse: Path, esp: EspEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A synced person who asks for erasure is deleted permanently (Mailchimp's delete path), not archived
    as a leaver of the audience; an address Mailchimp never had costs a request and is recorded as not found.
    A dry run only counts them, and a later sync does not ask again. No address reaches the output."""
    rows = people(range(5))
    write_audience(warehouse, rows)
    use_mailchimp_emulator(monkeypatch, esp)
    assert main(["sync", "--destination", "mailchimp"]) == 0
    capsys.readouterr()

    # user1 asked for erasure: dbt drops them from the audience and lists their address.
    write_audience(warehouse, [r for r in rows if r["person_id"] != "p00001"])
    write_erasures(warehouse, ["user1@example.com", "stranger@example.com"])
    assert main(["sync", "--destination", "mailchimp", "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert "would erase 2 addresses" in out + err and summary(out)["erasures (privacy requests)"] == "2"
    assert esp.mailchimp.erasures == [] and _erasures(warehouse) == []

    assert main(["sync", "--destination", "mailchimp"]) == 0
    out, err = capsys.readouterr()
    table = summary(out)
    assert (table["erasures (privacy requests)"], table["removals"], table["sent"]) == ("2", "0", "0")
    assert [e.email for e in esp.mailchimp.erasures] == ["user1@example.com"]
    assert esp.mailchimp.member(LIST_ID, "user1@example.com") is None
    assert members(esp) == expected_merge_fields([r for r in rows if r["person_id"] != "p00001"])
    assert _erasures(warehouse) == [("mailchimp:L1", "erased"), ("mailchimp:L1", "not_found")]
    assert "@example.com" not in out + err

    assert main(["sync", "--destination", "mailchimp"]) == 0
    assert summary(capsys.readouterr().out)["erasures (privacy requests)"] == "0"
    assert len(esp.mailchimp.erasures) == 1


def test_a_failed_erasure_fails_the_sync_and_is_tried_again(
    warehouse: Path, esp: EspEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from reverse_etl.testing.faults import FaultKind, FaultSpec

    rows = people(range(3))
    write_audience(warehouse, rows)
    use_mailchimp_emulator(monkeypatch, esp)
    assert main(["sync", "--destination", "mailchimp"]) == 0
    write_audience(warehouse, rows[1:])
    write_erasures(warehouse, [rows[0]["email"]])
    # A 400 is not retried: the erasure fails for this run.
    esp.faults.queue(FaultSpec(FaultKind.SERVER_ERROR, path_prefix="/3.0/lists", method="POST", status=400))
    assert main(["sync", "--destination", "mailchimp"]) == 1
    out = capsys.readouterr().out
    assert summary(out)["erasures failed"] == "1" and "tried again on the next run" in out
    con = duckdb.connect(str(warehouse))
    try:  # the run's own record says so too (python -m reverse_etl.run reads it)
        assert StateStore(con).runs("mailchimp:L1")[-1][3] == "partial"
    finally:
        con.close()
    assert esp.mailchimp.member(LIST_ID, rows[0]["email"]) is not None
    assert main(["sync", "--destination", "mailchimp"]) == 0
    assert esp.mailchimp.member(LIST_ID, rows[0]["email"]) is None
    assert _erasures(warehouse) == [("mailchimp:L1", "erased"), ("mailchimp:L1", "failed:400")]


def test_erasure_scrubs_the_file_destinations_history(warehouse: Path, tmp_path: Path) -> None:
    """The file destination keeps every run's changes file: an erasure removes the address from all of
    them, and from the audience file."""
    rows = people(range(4))
    write_audience(warehouse, rows)
    assert main(["sync", "--destination", "file"]) == 0
    changed = [dict(r, first_name="Changed") if r["person_id"] == "p00002" else r for r in rows]
    write_audience(warehouse, changed)
    assert main(["sync", "--destination", "file"]) == 0
    exports = tmp_path / "exports"
    assert (
        sum("user2@example.com" in path.read_text() for path in exports.glob("audience_changes_*.csv")) == 2
    )

    write_audience(warehouse, [r for r in changed if r["person_id"] != "p00002"])
    write_erasures(warehouse, ["user2@example.com"])
    assert main(["sync", "--destination", "file"]) == 0
    files = sorted(exports.glob("audience*.csv"))
    assert len(files) == 4  # the audience and three changes files
    assert not [path.name for path in files if "user2@example.com" in path.read_text()]
    # The first run's 4 inserts less user2's, the second run's one change gone, and the third run: user2 is
    # erased (and forgotten), not a removal.
    assert sorted(len(_csv(path)) for path in files if "changes" in path.name) == [0, 0, 3]
    assert _erasures(warehouse) == [("file", "erased")]


def write_opt_outs(db: Path, person_ids: list[str]) -> None:
    """activation.esp_opt_outs as dbt builds it: the people who opted out of email."""
    con = duckdb.connect(str(db))
    try:
        con.execute("create schema if not exists activation")
        con.execute(
            "create or replace table activation.esp_opt_outs as select unnest(?::varchar[]) as person_id",
            [person_ids],
        )
    finally:
        con.close()


def test_klaviyo_unsubscribes_people_who_opt_out_in_the_warehouse(
    warehouse: Path, esp: EspEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Klaviyo only upserts, so leaving the audience left an opted-out person subscribed there. An explicit
    opt-out (esp_opt_outs) is now unsubscribed from the list, once; someone who leaves for another reason
    (here p00002, say frequency-capped) is not. Whoever consents again is new and subscribed again."""
    rows = people(range(4))
    write_audience(warehouse, rows)
    use_klaviyo_emulator(monkeypatch, esp)
    assert main(["sync", "--destination", "klaviyo"]) == 0
    assert esp.wait_idle()
    before = len(esp.klaviyo.subscription_changes)

    write_audience(warehouse, [r for r in rows if r["person_id"] not in ("p00000", "p00002")])
    write_opt_outs(warehouse, ["p00000", "p09999"])  # p09999 was never sent to Klaviyo
    assert main(["sync", "--destination", "klaviyo", "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert "would unsubscribe 1 people who opted out" in out + err
    assert esp.wait_idle() and len(esp.klaviyo.subscription_changes) == before

    assert main(["sync", "--destination", "klaviyo"]) == 0
    out, err = capsys.readouterr()
    assert summary(out)["unsubscribed (opted out)"] == "1" and "@example.com" not in out + err
    assert esp.wait_idle()
    [change] = esp.klaviyo.subscription_changes[before:]
    assert (change.email, change.new, change.list_id) == ("user0@example.com", "UNSUBSCRIBED", "KL1")
    assert esp.klaviyo.profile("user2@example.com").consent("email.marketing") == "SUBSCRIBED"

    assert main(["sync", "--destination", "klaviyo"]) == 0  # nothing left to unsubscribe
    assert summary(capsys.readouterr().out)["unsubscribed (opted out)"] == "0"

    write_opt_outs(warehouse, [])  # p00000 consents again
    write_audience(warehouse, rows)
    assert main(["sync", "--destination", "klaviyo"]) == 0
    assert esp.wait_idle()
    assert esp.klaviyo.profile("user0@example.com").consent("email.marketing") == "SUBSCRIBED"


@pytest.mark.parametrize("mode", ["mirror", "upsert"])
def test_mailchimp_unsubscribes_people_who_opt_out_in_the_warehouse(
    mode: str,
    warehouse: Path,
    esp: EspEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An explicit opt-out becomes Mailchimp's status unsubscribed, once, in both modes. Upsert mode used to
    leave the person subscribed; mirror mode only archived them, and an archived member that another tool
    re-adds comes back subscribed. Mirror mode still archives them after. Someone who leaves for another
    reason (p00002) keeps their status. Consenting again does not lift the unsubscribe (Mailchimp's rule)."""
    rows = people(range(4))
    write_audience(warehouse, rows)
    use_mailchimp_emulator(monkeypatch, esp)
    assert main(["sync", "--destination", "mailchimp", "--mode", mode]) == 0
    capsys.readouterr()

    write_audience(warehouse, [r for r in rows if r["person_id"] not in ("p00000", "p00002")])
    write_opt_outs(warehouse, ["p00000", "p09999"])  # p09999 was never sent to Mailchimp
    assert main(["sync", "--destination", "mailchimp", "--mode", mode, "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert "would unsubscribe 1 people who opted out" in out + err
    assert esp.mailchimp.status_changes == []

    assert main(["sync", "--destination", "mailchimp", "--mode", mode]) == 0
    out, err = capsys.readouterr()
    table = summary(out)
    assert table["unsubscribed (opted out)"] == "1" and "@example.com" not in out + err
    assert table["removals"] == ("2" if mode == "mirror" else "0")
    [change] = esp.mailchimp.consent_changes()
    assert (change.email, change.old_status, change.new_status) == (
        "user0@example.com",
        "subscribed",
        "unsubscribed",
    )
    archived = {c.email for c in esp.mailchimp.status_changes if c.kind == "archive"}
    assert archived == ({"user0@example.com", "user2@example.com"} if mode == "mirror" else set())
    assert esp.mailchimp.member(LIST_ID, "user0@example.com").status == "unsubscribed"
    assert esp.mailchimp.member(LIST_ID, "user2@example.com").status == "subscribed"

    assert main(["sync", "--destination", "mailchimp", "--mode", mode]) == 0  # nothing left to unsubscribe
    assert summary(capsys.readouterr().out)["unsubscribed (opted out)"] == "0"
    assert len(esp.mailchimp.consent_changes()) == 1

    write_opt_outs(warehouse, [])  # p00000 consents again: fields updated, still unsubscribed
    write_audience(warehouse, rows)
    assert main(["sync", "--destination", "mailchimp", "--mode", mode]) == 0
    assert esp.mailchimp.member(LIST_ID, "user0@example.com").status == "unsubscribed"
    assert len(esp.mailchimp.consent_changes()) == 1
