"""Review of issue 13 (sublingual, oral, take-home): each defect found, as a failing test.

Every expected number is worked by hand in the comment beside it. Limits are the shipped
``[routes.oral...]`` and ``[routes.sublingual...]`` of ketadose/data/limits.toml: oral step
25 mg soft / 50 mg hard, oral total 300 mg hard; sublingual total 200 mg hard.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ketadose.cli import app
from ketadose.store import SCHEMA_VERSION
from tests.stores import as_schema_5

runner = CliRunner()


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


def run_json(*args: str) -> tuple[int, dict[str, Any]]:
    result = invoke(*args, "--json")
    assert result.stdout, (args, result.exit_code, result.stderr)
    data: dict[str, Any] = json.loads(result.stdout)
    return result.exit_code, data


def hard(data: dict[str, Any]) -> dict[str, str]:
    return {f["code"]: f["message"] for f in data["findings"] if f["severity"] == "hard"}


TABLETS = """[library]
name = "clinic"
version = "1"

[[protocol]]
id = "clinic-tab"
name = "Clinic oral tablets"
category = "psychiatric"
route = "oral"
setting = "take-home"
summary = "clinic"
references = ["clinic"]

[[protocol.phases]]
kind = "fixed"
dose = "100 mg"
source = "clinic policy"
evidence = "SITE-POLICY"

[protocol.form]
kind = "tablet"
name = "oral tablet"
strengths = ["200 mg"]
split = 2
source = "clinic policy"
evidence = "SITE-POLICY"

[protocol.series]
sessions = 4
per_week = [1, 2]
source = "clinic policy"
evidence = "SITE-POLICY"
"""


# --- D1: an mg escalation step after a previous dose given per kg was never checked ---------


def test_oral_step_from_a_previous_dose_in_mg_per_kg_is_checked() -> None:
    # previous 0.5 mg/kg x 70 kg = 35 mg; 150 - 35 = 115 mg > 50 mg hard step
    code, data = run_json(
        "dose", "-p", "depression-oral", "--weight", "70kg", "--dose", "150mg",
        "--at", "2026-11-28T09:00", "--previous", "2026-11-25T09:00=0.5mg/kg",
    )  # fmt: skip
    assert code == 4
    assert "115 mg" in hard(data)["escalation-step-high"]


# --- D2: a step measured out of tablets was checked only as prescribed -----------------------


def test_tablet_step_is_checked_as_measured(tmp_path: Path) -> None:
    # 150 mg of 200-mg tablets split in 2: 0.75 tablet rounds to 1 tablet = 200 mg delivered.
    # Prescribed step 150 - 100 = 50 mg (soft, past 25); measured step 200 - 100 = 100 mg,
    # past the 50-mg hard maximum: refused, nothing to measure.
    clinic = tmp_path / "clinic.toml"
    clinic.write_text(TABLETS)
    code, data = run_json(
        "dose", "-p", "clinic-tab", "--protocols", str(clinic), "--weight", "80kg",
        "--dose", "150mg", "--at", "2026-12-07T09:00", "--previous", "2026-12-04T09:00=100mg",
    )  # fmt: skip
    assert code == 4
    assert "100 mg" in hard(data)["escalation-step-high"]
    assert data["measured"] is None


# --- D3: a take-home dose escalated on summary vitals with no patient report ---------------


def test_take_home_summary_vitals_without_a_report_hold() -> None:
    # Vitals in limits say nothing of nausea or dissociation: without --reported, hold at 50.
    for args in (
        ("patient", "add", "P1", "-p", "depression-oral", "--weight", "80kg", "--baseline", "30"),
        ("session", "record", "P1", "--date", "2026-12-07T09:00", "--dose", "50mg",
         "--score", "28", "--bp-peak", "130/80", "--hr", "80", "--spo2", "98"),
    ):  # fmt: skip
        assert invoke(*args).exit_code == 0
    result = invoke("next", "P1", "--date", "2026-12-10T09:00", "--json")
    data = json.loads(result.stdout)
    assert (data["decision"], data["rule"], data["total_dose_mg"]) == (
        "hold",
        "hold-not-tolerated",
        50,
    )


def test_reported_round_trip_through_history_decides_as_the_store(tmp_path: Path) -> None:
    # 30 -> 28: 6.7 % < 50 %, reported with no adverse event: escalate 50 -> 75 mg, both ways.
    assert (
        invoke(
            "patient", "add", "P1", "-p", "depression-oral", "--weight", "80kg", "--baseline", "30"
        ).exit_code
        == 0
    )
    assert invoke(
        "session", "record", "P1", "--date", "2026-12-07T09:00", "--dose", "50mg",
        "--score", "28", "--reported",
    ).exit_code == 0  # fmt: skip
    history = invoke("history", "P1", "--json").stdout
    assert json.loads(history)["sessions"][0]["reported"] is True
    file = tmp_path / "h.json"
    file.write_text(history)
    answers = [
        json.loads(invoke("next", "P1", *extra, "--date", "2026-12-10T09:00", "--json").stdout)
        for extra in ((), ("--history", str(file)))
    ]
    assert [(a["decision"], a["total_dose_mg"]) for a in answers] == [("escalate", 75)] * 2
    for bad in (1, "yes", None):
        edited = json.loads(history)
        edited["sessions"][0]["reported"] = bad
        file.write_text(json.dumps(edited))
        result = invoke("next", "P1", "--history", str(file), "--date", "2026-12-10T09:00")
        assert result.exit_code == 2
        assert "reported must be true or false" in result.stderr


# --- D4: a take-home plan carried the clinic chair timeline in CSV and FHIR ------------------


def test_take_home_plan_csv_has_no_chair_timeline() -> None:
    result = invoke(
        "plan", "-p", "depression-sublingual", "--weight", "80kg", "--start", "2026-12-07",
        "--format", "csv",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    first = next(csv.DictReader(io.StringIO(result.stdout)))
    # taken at 09:00 at home: no arrival, no 20-min intake, no discharge
    assert (first["arrive"], first["infusion_start"], first["discharge_earliest"]) == (
        "",
        "2026-12-07T09:00:00+01:00",
        "",
    )
    assert (first["measured_amount"], first["systemic_mg"]) == ("0.1", "3")  # 10 mg; 30 %


def test_take_home_plan_fhir_times_the_dose_when_it_is_taken() -> None:
    result = invoke(
        "plan", "-p", "depression-oral", "--weight", "80kg", "--start", "2026-12-07",
        "--format", "fhir",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    request = json.loads(result.stdout)["entry"][1]["resource"]
    assert request["dosageInstruction"][0]["timing"]["event"] == ["2026-12-07T09:00:00+01:00"]


# --- D5, D6: a refused dose shown with a systemic mg, and losing its SNOMED dose form -------


def test_refused_sublingual_dose_shows_no_systemic_mg() -> None:
    result = invoke(
        "plan", "-p", "depression-sublingual", "--weight", "80kg", "--start", "2026-12-07",
        "--dose", "400mg", "--format", "markdown",
    )  # fmt: skip
    assert result.exit_code == 4
    assert "120 mg" not in result.stdout


def test_refused_oral_request_keeps_its_snomed_dose_form() -> None:
    result = invoke(
        "dose", "-p", "depression-oral", "--weight", "80kg", "--dose", "325mg", "--format", "fhir"
    )
    assert result.exit_code == 4
    bundle = json.loads(result.stdout)
    request = next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "MedicationRequest"
    )
    form = request["contained"][0]["form"]
    assert form["coding"][0]["code"] == "385023001"  # conventional release oral solution


# --- the v4 -> v5 migration keeps every session, unreported --------------------------------


def test_schema_4_store_migrates_and_keeps_its_sessions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "old.sqlite3"
    monkeypatch.setenv("KETADOSE_STORE", str(store))
    assert (
        invoke(
            "patient", "add", "P1", "-p", "depression-oral", "--weight", "80kg", "--baseline", "30"
        ).exit_code
        == 0
    )
    for day in ("2026-12-07", "2026-12-10"):
        assert invoke(
            "session", "record", "P1", "--date", f"{day}T09:00", "--dose", "50mg",
            "--reported",
        ).exit_code == 0  # fmt: skip
    with closing(sqlite3.connect(store, isolation_level=None)) as conn:
        as_schema_5(conn)
        conn.execute("ALTER TABLE sessions DROP COLUMN reported")  # as schema 4 had it
        conn.execute("PRAGMA user_version = 4")
    result = invoke("history", "P1", "--json")
    assert result.exit_code == 0, result.stderr
    sessions = json.loads(result.stdout)["sessions"]
    assert [(s["total_dose_mg"], s["reported"]) for s in sessions] == [(50, False), (50, False)]
    with closing(sqlite3.connect(store)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


# --- D7: the oral regimen graded above the reference ----------------------------------------


def test_oral_regimen_is_graded_as_the_reference_grades_it() -> None:
    from ketadose.protocols import load_library

    protocol = load_library()["depression-oral"].protocol
    assert protocol.phases[0].evidence == "MED"
    assert {step.evidence for step in protocol.escalation} == {"MED"}
