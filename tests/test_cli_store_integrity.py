"""store check, store migrate, audit verify, the chain head, exposure and who is acting.

Each test not about the SQLite file (its schema of old, its modes) runs on both engines
(``store_target``, which ``KETADOSE_STORE`` points at); on PostgreSQL the command line connects
as the store's owner, and tampering is by the server's superuser (tests.stores).
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from ketadose.cli import app
from ketadose.render.schema import schema
from ketadose.store import SCHEMA_VERSION
from tests.stores import (
    GROUP_ROLE,
    ON_POSTGRESQL,
    ON_SQLITE,
    StoreTarget,
    acting_user,
    as_schema_5,
    disable_trigger,
    drop_trigger,
    raw_sql,
    tamper,
    trigger_names,
    triggers_off,
)

runner = CliRunner()


def run(*args: str) -> Any:
    return runner.invoke(app, list(args))


def valid(name: str, text: str) -> dict[str, Any]:
    document = schema(name)
    Draft202012Validator.check_schema(document)
    data: dict[str, Any] = json.loads(text)
    Draft202012Validator(document).validate(data)
    return data


@pytest.fixture
def filled(store_target: StoreTarget) -> StoreTarget:
    """A store on the test's engine with a patient, P1, and two sessions, claimed by RN Claim."""
    add = run("patient", "add", "P1", "-p", "depression", "--weight", "80kg", "--baseline", "30")
    assert add.exit_code == 0, add.stderr
    for day, dose in (("2026-12-01", "40mg"), ("2026-12-03", "40mg")):
        recorded = run(
            "session", "record", "P1", "--date", f"{day}T09:00", "--dose", dose, "--score", "25",
            "--clinician", "RN Claim",
        )  # fmt: skip
        assert recorded.exit_code == 0, recorded.stderr
    return store_target


def file_of(target: StoreTarget) -> Path:
    """The SQLite file of a target (the tests of files)."""
    assert target.path is not None, "an SQLite store"
    return target.path


def test_a_sound_store_checks_clean(filled: StoreTarget) -> None:
    result = run("store", "check")
    assert result.exit_code == 0, result.stderr
    assert f"store schema version {SCHEMA_VERSION}" in result.stdout
    assert "audit chain intact (2 rows, head #2 " in result.stdout
    assert "sessions chain intact (2 rows" in result.stdout
    data = valid("store", run("store", "check", "--json").stdout)
    assert data["problems"] == [] and data["missing_triggers"] == []
    # audit, sessions, clinicians (none registered), signatures (each session administered)
    assert [(c["table"], c["rows"]) for c in data["chains"]] == [
        ("audit", 2),
        ("sessions", 2),
        ("clinicians", 0),
        ("signatures", 2),
        ("patients", 1),
        ("measurements", 1),
        ("scores", 0),
        ("session_readings", 0),
    ]


def test_a_tampered_store_gives_each_problem_and_exit_6(filled: StoreTarget) -> None:
    # SQLite: every trigger dropped; PostgreSQL: every trigger disabled, left in place.
    triggers_off(filled, "UPDATE sessions SET dose_mg = 80 WHERE id = 1")
    result = run("store", "check")
    assert result.exit_code == 6
    problems = result.stderr.strip().splitlines()
    triggers = trigger_names(filled)
    assert len(problems) == len(triggers) + 1  # every trigger out, and the edited session
    assert all(line.startswith(f"ketadose: {filled.url}: ") for line in problems)
    state = "" if filled.sqlite else " (disabled)"
    assert problems[: len(triggers)] == [
        f"ketadose: {filled.url}: trigger {name}{state} is missing: it was dropped outside"
        " ketadose; the rows it guards may have been changed (see the chains)"
        for name in triggers
    ]
    assert problems[-1].endswith("sessions entry 1 does not match its hash: edited")
    data = valid("store", run("store", "check", "--json").stdout)
    (sessions,) = [c for c in data["chains"] if c["table"] == "sessions"]
    assert (sessions["intact"], sessions["kind"], sessions["broken_at"]) == (False, "edited", 1)


@ON_SQLITE
def test_an_older_store_is_reported_then_migrated(filled: StoreTarget) -> None:
    # SQLite only: a file of schema 5 (a PostgreSQL store begins at version 7).
    path = file_of(filled)
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        as_schema_5(conn)
    before = path.read_bytes()
    result = run("store", "check")
    assert result.exit_code == 6
    older = f"store schema version 5, older than version {SCHEMA_VERSION}: run ketadose store"
    assert f"{older} migrate" in result.stderr
    assert path.read_bytes() == before  # checking changes nothing
    migrated = run("store", "migrate")
    assert migrated.exit_code == 0, migrated.stderr
    assert f"migrated from 5 to store schema version {SCHEMA_VERSION}" in migrated.stdout
    assert "sealed into the hash chain" in migrated.stderr
    assert path.with_name(path.name + ".bak-v5").is_file()
    assert run("store", "check").exit_code == 0
    again = run("store", "migrate")
    assert f"already at store schema version {SCHEMA_VERSION}" in again.stdout


def test_no_store_is_refused_and_not_created(store_path: Path) -> None:
    # SQLite: no file (the server's empty database: test_an_empty_database_is_no_store).
    for command in (["store", "check"], ["store", "migrate"], ["audit", "verify"]):
        result = run(*command)
        assert result.exit_code == 6
        assert f"no store at {store_path}" in result.stderr
    assert not store_path.exists()


@pytest.mark.parametrize(
    ("statements", "named"),
    [
        (["UPDATE audit SET status = 'hard' WHERE id = 1"], "audit entry 1 does not match"),
        (["DELETE FROM sessions WHERE id = 1"], "sessions entry 2 follows an entry that is gone"),
        (["DELETE FROM audit WHERE id = 2"], "audit entries 2 to 2 are gone"),
    ],
)
def test_audit_verify_names_the_first_break(
    filled: StoreTarget, statements: list[str], named: str
) -> None:
    assert run("audit", "verify").exit_code == 0
    tamper(filled, *statements)
    result = run("audit", "verify")
    assert result.exit_code == 6
    assert named in result.stderr
    data = valid("chain", run("audit", "verify", "--json").stdout)
    assert data["problems"] and named in data["problems"][0]


def test_audit_verify_takes_no_patient(filled: StoreTarget) -> None:
    result = run("audit", "verify", "--patient", "P1")
    assert result.exit_code == 2
    assert "--patient does not fit it" in result.stderr


def test_the_chain_head_is_printed_with_the_log(filled: StoreTarget) -> None:
    head = json.loads(run("store", "check", "--json").stdout)["chains"][0]
    table = run("audit")
    assert f"Chain head (the log's last entry, 2):\n{head['head']}\n" in table.stdout
    data = valid("audit", run("audit", "--json").stdout)
    assert data["chain_head"] == {"id": 2, "hash": head["head"]}
    assert data["entries"][-1]["hash"] == head["head"]
    only = json.loads(run("audit", "--patient", "nobody", "--json").stdout)
    assert only["entries"] == [] and only["chain_head"]["id"] == 2  # the whole log's head


def test_the_user_is_who_the_system_says_the_clinician_a_claim(filled: StoreTarget) -> None:
    # The OS user on SQLite; the database session user (the store's owner here) on PostgreSQL.
    who = acting_user(filled)
    entries = json.loads(run("audit", "--json").stdout)["entries"]
    assert {(e["user"], e["claimed"]) for e in entries} == {(who, "RN Claim")}
    wide = runner.invoke(app, ["audit"], env={"COLUMNS": "200"})
    assert f"{who} (as RN Claim)" in wide.stdout


def test_a_session_edited_to_a_plausible_dose_is_not_decided_on(filled: StoreTarget) -> None:
    tamper(filled, "UPDATE sessions SET dose_mg = 80 WHERE id = 2")
    for command in (["next", "P1", "--date", "2026-12-07T09:00"], ["history", "P1", "--json"]):
        result = run(*command)
        assert result.exit_code == 6, command
        assert "sessions row 2: hash does not match" in result.stderr
        assert result.stdout == ""


@ON_SQLITE
class TestExposure:
    """SQLite only: the modes of the store's file and directory."""

    @pytest.fixture
    def filled(self, filled: StoreTarget) -> Path:
        return file_of(filled)

    def test_a_store_others_may_read_is_refused(self, filled: Path) -> None:
        filled.chmod(0o644)
        for command in (["history", "P1"], ["audit"], ["patient", "show", "P1"]):
            result = run(*command)
            assert result.exit_code == 6
            assert "is readable by other users (mode 0644): chmod 600" in result.stderr
            assert result.stdout == ""
        check = run("store", "check")  # reports it, refuses nothing else
        assert check.exit_code == 6
        assert "readable by other users" in check.stderr

    def test_a_directory_others_may_write_is_refused(self, filled: Path) -> None:
        filled.parent.chmod(0o777)
        result = run("dose", "-p", "depression", "--weight", "120kg", "--override-reason", "ok")
        assert result.exit_code == 6
        assert "the store's directory" in result.stderr and "chmod 700" in result.stderr

    def test_the_config_file_may_allow_it(
        self, filled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        filled.chmod(0o660)
        config = tmp_path / "clinic.toml"
        config.write_text("store_shared = true\n")
        monkeypatch.setenv("KETADOSE_CONFIG", str(config))
        assert run("history", "P1").exit_code == 0
        shown = json.loads(run("config", "show", "--json").stdout)
        assert shown["settings"]["store_shared"]["value"] == "true"
        assert shown["settings"]["store_shared"]["source"] == "config file"

    @pytest.mark.parametrize("value", ["yes", "1", "True", ""])
    def test_only_true_or_false_is_read(
        self, filled: Path, monkeypatch: pytest.MonkeyPatch, value: str
    ) -> None:
        filled.chmod(0o644)
        monkeypatch.setenv("KETADOSE_STORE_SHARED", value)
        result = run("history", "P1")
        assert result.exit_code in (2, 5)
        assert "KETADOSE_STORE_SHARED" in result.stderr
        assert result.stdout == ""


def test_a_batch_run_writes_one_entry_with_the_rows_digest(
    store_target: StoreTarget, tmp_path: Path
) -> None:
    import hashlib

    rows = b"id,weight,protocol\nA,80kg,depression\nB,400kg,depression\nC,,depression\n"
    source = tmp_path / "rows.csv"
    source.write_bytes(rows)
    result = run("batch", str(source), "-o", str(tmp_path / "out.jsonl"), "--clinician", "RN B")
    assert result.exit_code == 4  # B's plan crosses a hard limit
    (entry,) = json.loads(run("audit", "--json").stdout)["entries"]
    assert (entry["command"], entry["status"], entry["claimed"]) == ("batch", "hard", "RN B")
    assert entry["inputs"]["rows_sha256"] == hashlib.sha256(rows).hexdigest()
    assert entry["inputs"]["counts"] == {"ok": 1, "soft": 0, "hard": 1, "error": 1}
    assert entry["inputs"]["rows"] == 3 and entry["inputs"]["file"] == str(source)


@ON_SQLITE
def test_a_batch_is_refused_before_planning_when_the_store_is_exposed(
    filled: StoreTarget, tmp_path: Path
) -> None:
    # SQLite only: the file's mode.
    file_of(filled).chmod(0o666)
    source = tmp_path / "rows.csv"
    source.write_text("id,weight,protocol\nA,80kg,depression\n")
    out = tmp_path / "out.jsonl"
    result = run("batch", str(source), "-o", str(out))
    assert result.exit_code == 6
    assert "readable and writable by other users" in result.stderr
    assert not out.exists()


def test_next_from_a_history_file_is_logged(store_target: StoreTarget, tmp_path: Path) -> None:
    history = tmp_path / "h.json"
    history.write_text(
        json.dumps(
            {
                "patient": {"id": "H1", "protocol": "depression", "weight_kg": 80, "baseline": 30},
                "sessions": [
                    {"date": "2026-12-01T09:00:00+01:00", "total_dose_mg": 40, "score": 25}
                ],
            }
        )
    )
    result = run("next", "H1", "--history", str(history), "--date", "2026-12-07T09:00")
    assert result.exit_code in (0, 3, 4), result.stderr  # decided, whatever it decided
    (entry,) = json.loads(run("audit", "--json").stdout)["entries"]
    assert (entry["command"], entry["patient_id"]) == ("next", "H1")
    assert entry["inputs"]["history"] == str(history)


def test_a_printed_sheet_names_the_chain_head(filled: StoreTarget) -> None:
    plan = ("plan", "-p", "depression", "--weight", "80kg", "--start", "2026-12-07")
    sheet = run(*plan, "--format", "html")
    assert sheet.exit_code == 0, sheet.stderr
    head = json.loads(run("audit", "--json").stdout)["chain_head"]
    assert f"Audit log when printed: entry {head['id']}, chain head {head['hash']}" in sheet.stdout
    dose = run("dose", "-p", "depression", "--weight", "120kg", "--override-reason", "ok",
               "--format", "html")  # fmt: skip
    after = json.loads(run("audit", "--json").stdout)["chain_head"]
    assert after["id"] == head["id"] + 1  # the sheet's own override entry
    assert f"entry {after['id']}, chain head {after['hash']}" in dose.stdout


def test_a_sheet_without_a_store_names_no_head_and_creates_none(store_path: Path) -> None:
    # SQLite: no file made.
    sheet = run("plan", "-p", "depression", "--weight", "80kg", "--start", "2026-12-07",
                "--format", "html")  # fmt: skip
    assert sheet.exit_code == 0 and "Audit log when printed" not in sheet.stdout
    assert not store_path.exists()


# --- PostgreSQL: the server's store ------------------------------------------------------------


@ON_POSTGRESQL
def test_store_migrate_grants_the_clinicians_their_rights(filled: StoreTarget) -> None:
    migrated = run("store", "migrate")
    assert migrated.exit_code == 0, migrated.stderr
    assert migrated.stdout.splitlines() == [
        f"{filled.url}: already at store schema version {SCHEMA_VERSION}",
        f"{filled.url}: granted {GROUP_ROLE} the rights to read and add records, never to"
        " change them",
    ]
    assert run("store", "check").exit_code == 0


@ON_POSTGRESQL
def test_a_dropped_and_a_disabled_trigger_are_reported(filled: StoreTarget) -> None:
    drop_trigger(filled, "audit_no_update")
    disable_trigger(filled, "sessions_no_delete")
    result = run("store", "check")
    assert result.exit_code == 6
    problems = result.stderr.strip().splitlines()
    assert [line.split(": trigger ", 1)[1].split(" is missing")[0] for line in problems] == [
        "audit_no_update",
        "sessions_no_delete (disabled)",
    ]
    data = valid("store", run("store", "check", "--json").stdout)
    assert data["missing_triggers"] == ["audit_no_update", "sessions_no_delete (disabled)"]
    assert run("audit", "verify").exit_code == 0  # nothing was changed while they were out


@ON_POSTGRESQL
def test_a_privilege_granted_by_hand_is_reported_until_migrate_takes_it_back(
    filled: StoreTarget,
) -> None:
    raw_sql(filled, f"GRANT DELETE ON audit TO {GROUP_ROLE}")
    result = run("store", "check")
    assert result.exit_code == 6
    assert result.stderr.strip().splitlines() == [
        f"ketadose: {filled.url}: role {GROUP_ROLE} can DELETE audit"
    ]
    data = valid("store", run("store", "check", "--json").stdout)
    assert data["problems"] == [f"role {GROUP_ROLE} can DELETE audit"]
    assert run("store", "migrate").exit_code == 0  # the owner's grants, exactly, again
    assert run("store", "check").exit_code == 0


@ON_POSTGRESQL
def test_an_empty_database_is_checked_as_version_0_and_left_empty(
    store_target: StoreTarget,
) -> None:
    # An empty database is what a server's store is before its owner first opens it.
    result = run("store", "check")
    assert result.exit_code == 6
    assert result.stdout.startswith(f"{store_target.url}: store schema version 0 (")
    assert "store schema version 0, older than version" in result.stderr
    tables = "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = 'public'"
    assert raw_sql(store_target, tables) == [(0,)]
