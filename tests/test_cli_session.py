"""CLI tests for the session as the clinic records it: record, vitals, show, discharge, next."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from ketadose.cli import app
from ketadose.events import AdverseEvent, Grade
from ketadose.records import PatientRecord
from ketadose.store import MIGRATIONS, Store
from ketadose.store_schema import _migrate_to_v3
from tests.stores import add_old_patient

runner = CliRunner()
ZONE = ZoneInfo("Europe/Berlin")


def run(*args: str) -> Any:
    return runner.invoke(app, list(args))


def ok(*args: str) -> Any:
    result = run(*args)
    assert result.exit_code == 0, (args, result.stderr)
    return result


@pytest.fixture
def patient() -> None:
    ok(
        "patient", "add", "P1", "-p", "depression", "--weight", "110kg", "--height", "170cm",
        "--sex", "female", "--baseline", "30",
    )  # fmt: skip


def sessions() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(ok("history", "P1", "--json").stdout)["sessions"]
    return rows


def audit(command: str) -> list[dict[str, Any]]:
    entries = json.loads(ok("audit", "--patient", "P1", "--json").stdout)["entries"]
    return [e for e in entries if e["command"] == command]


@pytest.mark.usefixtures("patient")
class TestRecord:
    """A session keeps the planned and the given dose, each on its basis."""

    def test_basis_planned_and_given(self) -> None:
        ok("session", "record", "P1", "--date", "2026-11-30T09:00", "--dosing-weight", "adjusted")
        (row,) = sessions()
        # adjusted: 61.437008 + 0.4 x (110 - 61.437008) = 80.862205 kg; 0.5 mg/kg = 40.43 mg
        assert row["weight_policy"] == "adjusted"
        assert row["dosing_weight_kg"] == pytest.approx(80.862205)
        assert row["planned_dose_mg"] == pytest.approx(40.4311, abs=1e-3)
        assert row["planned_dose_mg_per_kg"] == pytest.approx(0.5)
        assert row["dose_mg_per_kg"] == pytest.approx(0.5, rel=0.01)

    def test_stopped_early_records_what_was_delivered(self) -> None:
        ok(
            "session", "record", "P1", "--date", "2026-11-30T09:00", "--stop",
            "2026-11-30T09:20", "--stop-reason", "patient asked to stop",
        )  # fmt: skip
        (row,) = sessions()
        # 0.5 mg/kg x 110 kg = 55 mg over 40 min: at 20 min half of what the bag holds
        assert row["planned_dose_mg"] == pytest.approx(55.0)
        assert row["total_dose_mg"] == pytest.approx(27.5, rel=0.01)
        assert row["duration_min"] == pytest.approx(20.0)
        assert row["stop_reason"] == "patient asked to stop"

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (("--stop", "2026-11-30T08:59"), "--stop must be after --date"),
            (("--stop-reason", "x"), "--stop-reason goes with --stop"),
            (("--ae", "nausea"), "has no grade"),
            (("--ae", "severe dissociation"), "the grade goes after a colon"),
            (("--ae", "wobbles:mild"), "vocabulary"),
            (("--ae", "nausea:awful"), "unknown grade"),
        ],
    )
    def test_bad_input_exits_2_and_stores_nothing(
        self, args: tuple[str, ...], message: str
    ) -> None:
        result = run("session", "record", "P1", "--date", "2026-11-30T09:00", *args)
        assert result.exit_code == 2
        assert message in result.stderr
        assert sessions() == []

    @pytest.mark.parametrize("offset", ["09:00", "08:00"])
    def test_a_session_at_or_before_an_existing_one_is_checked_with_it(self, offset: str) -> None:
        ok("session", "record", "P1", "--date", "2026-11-30T09:00")
        result = run("session", "record", "P1", "--date", f"2026-11-30T{offset}")
        assert result.exit_code == 0, result.stderr
        assert "finding(s) in the audit log" in result.stderr
        (entry,) = audit("session record")[-1:]
        codes = [f["code"] for f in entry["findings"]]
        assert any(code.startswith("interval") for code in codes)


@pytest.mark.usefixtures("patient")
class TestVitals:
    """Timed readings, each answered continue, pause or stop, and kept with the session."""

    @pytest.fixture(autouse=True)
    def session(self, patient: None) -> None:
        ok("session", "record", "P1", "--date", "2026-11-30T09:00")

    def reading(self, at: str, bp: str) -> Any:
        return run("session", "vitals", "P1", "--at", at, "--bp", bp, "--hr", "80", "--spo2", "97")

    def test_answers_and_exit_codes(self) -> None:
        assert self.reading("2026-11-30T08:55", "128/82").exit_code == 0  # before the dose
        assert self.reading("2026-11-30T09:10", "150/90").exit_code == 0
        paused = self.reading("2026-11-30T09:20", "185/100")
        assert paused.exit_code == 3 and "PAUSE" in paused.stdout
        stopped = self.reading("2026-11-30T09:30", "205/125")
        assert stopped.exit_code == 4 and "STOP" in stopped.stdout
        readings = sessions()[0]["readings"]
        assert [r["answer"] for r in readings] == ["continue", "continue", "pause", "stop"]
        assert [r["at"][11:16] for r in readings] == ["08:55", "09:10", "09:20", "09:30"]
        assert len(audit("session vitals")) == 4

    def test_a_csv_with_a_bad_row_stores_nothing(self, tmp_path: Path) -> None:
        path = tmp_path / "r.csv"
        path.write_text("at,bp,hr\n2026-11-30T09:10,140/90,80\n2026-11-30T09:20,90/140,80\n")
        result = run("session", "vitals", "P1", "--file", str(path))
        assert result.exit_code == 2
        assert "line 3" in result.stderr
        assert sessions()[0]["readings"] == []

    def test_a_reading_needs_a_value_and_a_session(self) -> None:
        assert run("session", "vitals", "P1", "--at", "2026-11-30T09:10").exit_code == 2
        early = self.reading("2026-11-29T09:00", "120/80")
        assert early.exit_code == 2 and "no session" in early.stderr

    def test_sedation_is_on_the_moaa_s(self) -> None:
        base = ("session", "vitals", "P1", "--at", "2026-11-30T09:10", "--hr", "80")
        assert run(*base, "--sedation", "6").exit_code == 2
        ok(*base, "--sedation", "4")
        assert sessions()[0]["readings"][0]["sedation"] == 4


@pytest.mark.usefixtures("patient")
class TestShowAndDischarge:
    """The schedule says what is missing; discharge waits for readiness."""

    @pytest.fixture(autouse=True)
    def session(self, patient: None) -> None:
        ok("session", "record", "P1", "--date", "2026-11-30T09:00")
        for minute in ("08:55", "09:10", "09:20", "09:30", "09:40", "09:55"):
            ok("session", "vitals", "P1", "--at", f"2026-11-30T{minute}", "--bp", "130/80")

    def show(self, at: str) -> dict[str, Any]:
        report: dict[str, Any] = json.loads(
            ok("session", "show", "P1", "--at", at, "--json").stdout
        )
        return report

    def test_missing_scheduled_readings_are_listed(self) -> None:
        report = self.show("2026-11-30T10:12")
        missing = [s["label"] for s in report["schedule"] if s["taken_at"] is None]
        # 40-min infusion, 30-min observation: after +15 taken, after +30 (10:10) and the
        # reading before discharge are missing.
        assert missing == ["after +30 min", "before discharge"]
        assert report["missing"] == 2
        assert report["tolerability"] == "not-shown"

    def test_discharge_waits_for_observation_criteria_and_a_reading(self) -> None:
        early = run("session", "discharge", "P1", "--at", "2026-11-30T10:00", "--confirm")
        assert early.exit_code == 3 and "observation not over" in early.stderr
        unconfirmed = run("session", "discharge", "P1", "--at", "2026-11-30T10:12")
        assert unconfirmed.exit_code == 3 and "--confirm" in unconfirmed.stderr
        ok("session", "vitals", "P1", "--at", "2026-11-30T10:10", "--bp", "150/95")
        high = run("session", "discharge", "P1", "--at", "2026-11-30T10:12", "--confirm")
        assert high.exit_code == 3 and "pre-session limits" in high.stderr
        ok("session", "vitals", "P1", "--at", "2026-11-30T10:11", "--bp", "128/80")
        ok("session", "discharge", "P1", "--at", "2026-11-30T10:12", "--confirm")
        assert sessions()[0]["discharged_at"] == "2026-11-30T10:12:00+01:00"
        assert self.show("2026-11-30T11:00")["missing"] == 0
        again = run("session", "discharge", "P1", "--at", "2026-11-30T10:20", "--confirm")
        assert again.exit_code == 2 and "discharged already" in again.stderr


@pytest.mark.usefixtures("patient")
class TestNext:
    """`next` exits by its decision and always writes an audit entry."""

    def test_severe_event_at_the_first_rung_stops_with_exit_4(self) -> None:
        ok("session", "record", "P1", "--date", "2026-11-30T09:00", "--ae", "dissociation:severe")
        result = run("next", "P1", "--date", "2026-12-02T09:00", "--json")
        assert result.exit_code == 4
        data = json.loads(result.stdout)
        assert (data["decision"], data["ready"], data["session"]) == ("stop", False, None)
        assert "stop: no dose to start" in result.stderr

    def test_severe_event_after_escalation_reduces_with_exit_3(self) -> None:
        for day in ("2026-11-30", "2026-12-02", "2026-12-04"):
            ok("session", "record", "P1", "--date", f"{day}T09:00")
        ok(
            "session", "record", "P1", "--date", "2026-12-07T09:00", "--dose", "0.75mg/kg",
            "--ae", "hypertension:severe",
        )  # fmt: skip
        result = run("next", "P1", "--date", "2026-12-09T09:00", "--json")
        assert result.exit_code == 3
        data = json.loads(result.stdout)
        assert (data["decision"], data["ready"]) == ("reduce", False)
        assert data["total_dose_mg"] == pytest.approx(55.0)
        assert all(p["pump_rate_ml_per_h"] is None for p in data["phases"])
        assert "reduce: review before the next session" in result.stderr

    def test_every_next_is_audited_from_the_store_and_from_a_file(self, tmp_path: Path) -> None:
        ok("session", "record", "P1", "--date", "2026-11-30T09:00")
        ok("next", "P1", "--date", "2026-12-02T09:00")
        exported = tmp_path / "h.json"
        exported.write_text(ok("history", "P1", "--json").stdout)
        ok("next", "P1", "--date", "2026-12-02T09:00", "--history", str(exported))
        entries = audit("next")
        assert len(entries) == 2
        assert entries[1]["inputs"]["history"] == str(exported)
        assert all(e["inputs"]["rule"] == "hold-not-tolerated" for e in entries)

    def test_questionnaire_scores_drive_next_from_the_store_and_the_file(
        self, tmp_path: Path
    ) -> None:
        for day in ("2026-11-30", "2026-12-02", "2026-12-04"):
            ok("score", "record", "P1", "--instrument", "madrs", "--total", "28", "--date",
               f"{day}T08:40")  # fmt: skip
            ok("session", "record", "P1", "--date", f"{day}T09:00")
            for minute in ("08:55", "09:10", "09:20", "09:30", "09:40", "09:55", "10:10"):
                ok("session", "vitals", "P1", "--at", f"{day}T{minute}", "--bp", "130/80")
        from_store = json.loads(ok("next", "P1", "--date", "2026-12-07T09:00", "--json").stdout)
        assert from_store["decision"] == "escalate"
        assert from_store["improvement_pct"] == pytest.approx(100 * 2 / 30)
        exported = tmp_path / "h.json"
        exported.write_text(ok("history", "P1", "--json").stdout)
        assert len(json.loads(exported.read_text())["scores"]) == 3
        from_file = json.loads(
            ok(
                "next", "P1", "--date", "2026-12-07T09:00", "--json", "--history", str(exported)
            ).stdout
        )
        assert from_file == from_store


class TestHistory:
    """Trends per instrument in every format."""

    @pytest.mark.usefixtures("patient")
    def test_trends(self) -> None:
        for day, total in (("2026-11-30", "30"), ("2026-12-02", "22"), ("2026-12-04", "10")):
            ok("score", "record", "P1", "--instrument", "madrs", "--total", total, "--date",
               f"{day}T08:40")  # fmt: skip
            ok("session", "record", "P1", "--date", f"{day}T09:00")
        assert "MADRS " in ok("history", "P1").stdout
        data = json.loads(ok("history", "P1", "--json").stdout)
        assert [row["total"] for row in data["trends"]["madrs"]] == [30, 22, 10]
        assert data["trends"]["madrs"][-1]["remission"] is True
        rows = ok("history", "P1", "--csv").stdout.splitlines()
        assert rows[0].endswith(",questionnaires")
        assert rows[3].endswith(",madrs=10")
        page = ok("history", "P1", "--format", "html").stdout
        assert page.startswith("<!DOCTYPE html>") and "<svg" in page


class TestMigration:
    """A store of schema 2 migrates keeping every session; old events are never guessed."""

    def test_v2_store_keeps_sessions_and_grades_what_it_can(self, store_path: Path) -> None:
        old = MIGRATIONS[: MIGRATIONS.index(_migrate_to_v3)]
        Store._open(store_path, read_only=False, migrations=old, zone=ZONE).close()
        add_old_patient(
            store_path,
            PatientRecord("P1", "depression", 30.0, 80.0),
            datetime(2026, 11, 1, tzinfo=ZONE),
        )
        with sqlite3.connect(store_path) as conn:
            for day, per_kg, events in (
                ("2026-11-02", 0.5, ["dissociation:severe"]),
                ("2026-11-04", 0.5, ["nausea", "severe dissociation"]),
            ):
                cursor = conn.execute(
                    "INSERT INTO sessions (patient_id, at, protocol, dose_mg, dose_mg_per_kg,"
                    " phases_json) VALUES ('P1', ?, 'depression', ?, ?, '[]')",
                    (f"{day}T09:00:00+01:00", per_kg * 80, per_kg),
                )
                conn.executemany(
                    "INSERT INTO session_adverse_events (session_id, position, event)"
                    " VALUES (?, ?, ?)",
                    [(cursor.lastrowid, i, e) for i, e in enumerate(events)],
                )
        result = run("next", "P1", "--date", "2026-11-06T09:00", "--json")
        assert "schema version 3: 2 adverse event(s) recorded without a grade" in result.stderr
        assert result.exit_code == 3
        data = json.loads(result.stdout)
        assert (data["decision"], data["rule"]) == ("reassess", "reassess-ungraded")
        with Store.open(store_path, zone=ZONE) as db:
            first, second = db.sessions("P1")
        assert first.adverse_events == (AdverseEvent("dissociation", Grade.SEVERE),)
        assert second.adverse_events == (
            AdverseEvent("nausea", None),
            AdverseEvent("severe dissociation", None),
        )
        assert (first.dosing_weight_kg, second.dosing_weight_kg) == (80.0, 80.0)
        assert list(store_path.parent.glob("*.bak-v2"))


class TestEdges:
    """Values a reading, a score or an exported event can never be."""

    @pytest.mark.usefixtures("patient")
    @pytest.mark.parametrize(
        ("option", "value"), [("--hr", "1000"), ("--bp", "999999/80"), ("--bp", "200/260")]
    )
    def test_implausible_readings_are_refused(self, option: str, value: str) -> None:
        ok("session", "record", "P1", "--date", "2026-11-30T09:00")
        result = run("session", "vitals", "P1", "--at", "2026-11-30T09:10", option, value)
        assert result.exit_code == 2
        assert "not a plausible reading" in result.stderr or "not below" in result.stderr

    def test_a_migraine_score_is_on_the_pain_scale(self) -> None:
        ok("patient", "add", "M", "-p", "migraine", "--weight", "70kg", "--baseline", "8")
        base = ("session", "record", "M", "--date", "2026-11-30T09:00", "--score")
        result = run(*base, "27")
        assert result.exit_code == 2 and "0 to 10" in result.stderr
        ok(*base, "7")

    def test_an_ungraded_event_round_trips_through_a_history_file(
        self, store_path: Path, tmp_path: Path
    ) -> None:
        old = MIGRATIONS[: MIGRATIONS.index(_migrate_to_v3)]
        Store._open(store_path, read_only=False, migrations=old, zone=ZONE).close()
        add_old_patient(
            store_path,
            PatientRecord("P1", "depression", 30.0, 80.0),
            datetime(2026, 11, 1, tzinfo=ZONE),
        )
        with sqlite3.connect(store_path) as conn:
            cursor = conn.execute(
                "INSERT INTO sessions (patient_id, at, protocol, dose_mg, dose_mg_per_kg,"
                " phases_json) VALUES ('P1', '2026-11-02T09:00:00+01:00', 'depression', 40,"
                " 0.5, '[]')"
            )
            conn.execute(
                "INSERT INTO session_adverse_events (session_id, position, event)"
                " VALUES (?, 0, 'nausea')",
                (cursor.lastrowid,),
            )
        exported = tmp_path / "h.json"
        exported.write_text(ok("history", "P1", "--json").stdout)
        assert json.loads(exported.read_text())["sessions"][0]["adverse_events"] == [
            "nausea:ungraded"
        ]
        args = ("next", "P1", "--date", "2026-11-05T09:00", "--json")
        from_store = run(*args)
        from_file = run(*args, "--history", str(exported))
        assert from_store.exit_code == from_file.exit_code == 3
        assert json.loads(from_store.stdout) == json.loads(from_file.stdout)
        # A new session never takes an ungraded event.
        refused = run(
            "session", "record", "P1", "--date", "2026-11-06T09:00", "--ae", "nausea:ungraded"
        )
        assert refused.exit_code == 2
