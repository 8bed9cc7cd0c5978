"""CLI tests for the record store: patients, sessions, history, next, audit, store errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ketadose.cli import app
from ketadose.cli.env import os_user

runner = CliRunner()


def run(*args: str) -> Any:
    return runner.invoke(app, list(args))


def add_patient() -> None:
    result = run("patient", "add", "P1", "-p", "depression", "--weight", "80kg", "--baseline", "30")
    assert result.exit_code == 0, result.stderr


#: The depression protocol's schedule for a 09:00 infusion of 40 min with 30 min observation:
#: before, every 10 min during, every 15 min after (the last one also before discharge).
SCHEDULE = ("08:55", "09:10", "09:20", "09:30", "09:40", "09:55", "10:10")


def timeline(day: str) -> list[dict[str, Any]]:
    """A history file's readings for the whole schedule, in limits."""
    return [{"at": f"{day}T{t}:00", "bp": "130/80", "heart_rate": 80, "spo2": 98} for t in SCHEDULE]


def record(day: str, score: str, *extra: str) -> Any:
    """Record a 09:00 depression session, then its whole timeline of readings in limits."""
    import tempfile

    result = record_only(day, score, *extra)
    if result.exit_code not in (0, 3, 4):
        return result
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as file:
        file.write("at,bp,hr,spo2\n")
        file.writelines(f"{day}T{t},130/80,80,98\n" for t in SCHEDULE)
    readings = run("session", "vitals", "P1", "--file", file.name)
    assert readings.exit_code == 0, readings.stderr
    return result


def record_only(day: str, score: str, *extra: str) -> Any:
    return run(
        "session",
        "record",
        "P1",
        "--date",
        f"{day}T09:00",
        "--dose",
        "0.5mg/kg",
        "--duration",
        "40min",
        "--bp-peak",
        "150/92",
        "--hr",
        "88",
        "--spo2",
        "97",
        "--score",
        score,
        *extra,
    )


class TestPatients:
    """Patients are added once and shown with their sessions."""

    def test_add_and_show(self) -> None:
        add_patient()
        data = json.loads(run("patient", "show", "P1", "--json").stdout)
        assert data["patient"]["id"] == "P1"
        assert data["patient"]["baseline"] == 30
        assert data["patient"]["weight_kg"] == 80
        assert data["sessions"] == []

    def test_duplicate_and_unknown(self) -> None:
        add_patient()
        again = run(
            "patient", "add", "P1", "-p", "depression", "--weight", "80kg", "--baseline", "30"
        )
        assert again.exit_code == 2
        unknown = run("patient", "show", "P9")
        assert unknown.exit_code == 2
        assert "P9" in unknown.stderr

    def test_unknown_protocol(self) -> None:
        result = run("patient", "add", "P2", "-p", "nope", "--weight", "80kg", "--baseline", "30")
        assert result.exit_code == 2


class TestSessionsAndHistory:
    """Recorded sessions come back with doses, scores and improvement from baseline."""

    def test_history_json_and_csv(self) -> None:
        add_patient()
        for day, score in (("2026-11-02", "27"), ("2026-11-04", "24"), ("2026-11-06", "15")):
            assert record(day, score).exit_code == 0
        data = json.loads(run("history", "P1", "--json").stdout)
        rows = data["sessions"]
        assert [r["date"] for r in rows] == [
            "2026-11-02T09:00:00+01:00",
            "2026-11-04T09:00:00+01:00",
            "2026-11-06T09:00:00+01:00",
        ]
        assert [r["total_dose_mg"] for r in rows] == [40, 40, 40]
        assert [r["dose_mg_per_kg"] for r in rows] == [0.5, 0.5, 0.5]
        assert [r["improvement_pct"] for r in rows] == pytest.approx([10, 20, 50])
        assert rows[0]["bp_peak"] == "150/92"
        table = list(csv.DictReader(io.StringIO(run("history", "P1", "--csv").stdout)))
        assert [row["score"] for row in table] == ["27", "24", "15"]

    def test_json_and_csv_together_is_refused(self) -> None:
        add_patient()
        assert run("history", "P1", "--json", "--csv").exit_code == 2

    def test_session_past_a_hard_limit_is_kept_and_flagged(self) -> None:
        add_patient()
        result = run(
            "session",
            "record",
            "P1",
            "--date",
            "2026-11-02T09:00",
            "--dose",
            "2mg/kg",
            "--duration",
            "60min",
        )
        assert result.exit_code == 0
        assert "hard" in result.stderr
        assert len(json.loads(run("history", "P1", "--json").stdout)["sessions"]) == 1
        audit = json.loads(run("audit", "--patient", "P1", "--json").stdout)["entries"]
        assert audit[-1]["status"] == "hard"
        assert any(f["code"] == "total-dose-per-kg-high" for f in audit[-1]["findings"])


class TestNext:
    """`next` reads the store (or a file) and recommends one step at a time."""

    def test_escalates_after_three_tolerated_non_responses(self) -> None:
        add_patient()
        for day in ("2026-11-02", "2026-11-04", "2026-11-06"):
            record(day, "27")
        result = run("next", "P1", "--date", "2026-11-09T09:00", "--json")
        assert result.exit_code == 0, result.stderr
        data = json.loads(result.stdout)
        assert data["decision"] == "escalate"
        assert data["dose_mg_per_kg"] == 0.75
        assert data["total_dose_mg"] == 60
        assert data["earliest_date"] == "2026-11-09T09:00:00+01:00"
        assert data["reasons"]
        assert data["status"] == "ok"

    def test_holds_a_responder(self) -> None:
        add_patient()
        for day, score in (("2026-11-02", "20"), ("2026-11-04", "15"), ("2026-11-06", "12")):
            record(day, score)
        data = json.loads(run("next", "P1", "--date", "2026-11-09T09:00", "--json").stdout)
        assert data["decision"] == "hold"
        assert data["dose_mg_per_kg"] == 0.5

    def test_start_without_sessions(self) -> None:
        add_patient()
        data = json.loads(run("next", "P1", "--date", "2026-11-02T09:00", "--json").stdout)
        assert data["decision"] == "start"

    def test_history_file_for_scripts(self, tmp_path: Path) -> None:
        add_patient()
        for day in ("2026-11-02", "2026-11-04", "2026-11-06"):
            record(day, "27")
        exported = tmp_path / "history.json"
        exported.write_text(run("history", "P1", "--json").stdout)
        from_store = json.loads(run("next", "P1", "--date", "2026-11-09T09:00", "--json").stdout)
        from_file = json.loads(
            run(
                "next", "P1", "--date", "2026-11-09T09:00", "--json", "--history", str(exported)
            ).stdout
        )
        assert from_file["decision"] == from_store["decision"] == "escalate"
        assert from_file["total_dose_mg"] == from_store["total_dose_mg"]

    @pytest.mark.parametrize(
        "content", ["{", '{"patient": {}}', '{"patient": {"id": "P1"}, "sessions": []}', "[]"]
    )
    def test_bad_history_file_exits_2(self, tmp_path: Path, content: str) -> None:
        path = tmp_path / "h.json"
        path.write_text(content)
        result = run("next", "P1", "--history", str(path))
        assert result.exit_code == 2
        assert str(path) in result.stderr


class TestAudit:
    """Findings and overrides are logged with who, when, inputs and library hash."""

    def test_override_is_logged_with_its_reason(self) -> None:
        result = run(
            "dose",
            "-p",
            "depression",
            "--weight",
            "80kg",
            "--dose",
            "1.2mg/kg",
            "--duration",
            "60min",
            "--override-reason",
            "no response at 0.75, tolerated",
            "--clinician",
            "Dr B",
        )
        assert result.exit_code == 0
        entries = json.loads(run("audit", "--json").stdout)["entries"]
        assert entries[-1]["command"] == "dose"
        # the user is who the system says is acting; the name given is kept as a claim
        assert entries[-1]["user"] == os_user()
        assert entries[-1]["claimed"] == "Dr B"
        assert entries[-1]["override_reason"] == "no response at 0.75, tolerated"
        assert entries[-1]["status"] == "soft"
        assert len(entries[-1]["library_sha256"]) == 64
        assert entries[-1]["inputs"]["protocol"] == "depression"

    def test_clean_dose_writes_nothing(self, store_path: Path) -> None:
        assert run("dose", "-p", "depression", "--weight", "80kg").exit_code == 0
        assert not store_path.exists()


class TestStoreErrors:
    """A store that cannot be used exits 6 with one line."""

    def test_corrupt_store(self, store_path: Path) -> None:
        store_path.write_bytes(b"this is not a database" * 100)
        result = run("patient", "show", "P1")
        assert result.exit_code == 6
        assert len(result.stderr.strip().splitlines()) == 1

    def test_override_that_cannot_be_logged_is_refused(self, store_path: Path) -> None:
        store_path.write_bytes(b"this is not a database" * 100)
        result = run(
            "dose",
            "-p",
            "depression",
            "--weight",
            "80kg",
            "--dose",
            "1.2mg/kg",
            "--override-reason",
            "x y z",
        )
        assert result.exit_code == 6


def history_file(tmp_path: Path, sessions: list[dict[str, Any]], **patient: Any) -> Path:
    path = tmp_path / "h.json"
    body = {
        "patient": {
            "id": "X",
            "protocol": "depression",
            "baseline": 30,
            "weight_kg": 80,
            **patient,
        },
        "sessions": sessions,
    }
    path.write_text(json.dumps(body))
    return path


def row(day: str, per_kg: float = 0.5, score: float | None = 27, **extra: Any) -> dict[str, Any]:
    return {
        "date": f"{day}T09:00:00",
        "total_dose_mg": per_kg * 80,
        "dose_mg_per_kg": per_kg,
        "score": score,
        "bp_peak": "150/92",
        "heart_rate": 88,
        "spo2": 97,
        "readings": timeline(day),
        **extra,
    }


class TestReviewRegressions:
    """Defects found in the review of the series commands stay fixed."""

    def test_no_escalation_after_an_earlier_poorly_tolerated_session(self, tmp_path: Path) -> None:
        path = history_file(
            tmp_path, [row("2026-11-02"), row("2026-11-04", bp_peak="190/120"), row("2026-11-06")]
        )
        data = json.loads(
            run("next", "X", "--history", str(path), "--date", "2026-11-09T09:00", "--json").stdout
        )
        assert data["decision"] == "hold"
        assert any("2026-11-04" in reason for reason in data["reasons"])

    def test_missing_score_at_the_last_session_holds(self, tmp_path: Path) -> None:
        path = history_file(
            tmp_path, [row("2026-11-02"), row("2026-11-04"), row("2026-11-06", score=None)]
        )
        data = json.loads(
            run("next", "X", "--history", str(path), "--date", "2026-11-09T09:00", "--json").stdout
        )
        assert data["decision"] == "hold"
        assert any("no score at the last session" in reason for reason in data["reasons"])

    @pytest.mark.parametrize("spelling", ["dissociation: severe", "Dissociation:SEVERE"])
    def test_severe_adverse_event_spellings(self, spelling: str) -> None:
        add_patient()
        assert record("2026-11-02", "27", "--ae", spelling).exit_code == 0
        rows = json.loads(run("history", "P1", "--json").stdout)["sessions"]
        assert rows[0]["adverse_events"] == ["dissociation:severe"]
        # A severe event at the first rung: stop, exit 4, no programme.
        result = run("next", "P1", "--date", "2026-11-05T09:00", "--json")
        assert result.exit_code == 4
        data = json.loads(result.stdout)
        assert (data["decision"], data["ready"], data["session"]) == ("stop", False, None)

    def test_severity_without_a_colon_is_refused(self) -> None:
        add_patient()
        assert record("2026-11-02", "27", "--ae", "severe nausea").exit_code == 2

    def test_rate_protocols_and_the_protocol_programme_can_be_recorded(self) -> None:
        assert (
            run(
                "patient", "add", "C", "-p", "crps", "--weight", "80kg", "--baseline", "8"
            ).exit_code
            == 0
        )
        result = run(
            "session",
            "record",
            "C",
            "--date",
            "2026-11-10T09:00",
            "--rate",
            "0.3mg/kg/h",
            "--duration",
            "4h",
        )
        assert result.exit_code == 0, result.stderr
        assert json.loads(run("history", "C", "--json").stdout)["sessions"][0][
            "total_dose_mg"
        ] == pytest.approx(96)
        assert (
            run(
                "patient",
                "add",
                "D",
                "-p",
                "cocaine-use-disorder",
                "--weight",
                "80kg",
                "--baseline",
                "8",
            ).exit_code
            == 0
        )
        assert run("session", "record", "D", "--date", "2026-11-10T09:00").exit_code == 0
        assert json.loads(run("history", "D", "--json").stdout)["sessions"][0][
            "total_dose_mg"
        ] == pytest.approx(56.8)

    def test_peak_vital_findings_set_the_status(self) -> None:
        add_patient()
        result = run(
            "session",
            "record",
            "P1",
            "--date",
            "2026-11-22T09:00",
            "--dose",
            "0.5mg/kg",
            "--bp-peak",
            "250/140",
            "--spo2",
            "70",
        )
        assert result.exit_code == 0
        assert "(hard" in result.stderr
        assert json.loads(run("audit", "--json").stdout)["entries"][-1]["status"] == "hard"

    def test_a_failed_record_keeps_the_old_weight(self) -> None:
        add_patient()
        failed = run(
            "session",
            "record",
            "P1",
            "--date",
            "2026-11-30T09:00",
            "--dose",
            "0,5mg/kg",
            "--weight",
            "60kg",
        )
        assert failed.exit_code == 2
        assert (
            json.loads(run("patient", "show", "P1", "--json").stdout)["patient"]["weight_kg"] == 80
        )

    def test_back_filled_session_is_recorded(self) -> None:
        add_patient()
        assert record("2026-11-30", "27").exit_code == 0
        assert record("2026-11-27", "28").exit_code == 0
        dates = [r["date"] for r in json.loads(run("history", "P1", "--json").stdout)["sessions"]]
        assert dates == ["2026-11-27T09:00:00+01:00", "2026-11-30T09:00:00+01:00"]

    @pytest.mark.parametrize(
        ("patient", "session"),
        [
            ({"baseline": float("nan")}, {}),
            ({"weight_kg": -80}, {}),
            ({}, {"score": -50}),
            ({}, {"total_dose_mg": -40}),
            ({}, {"date": "2026-03-29T02:30"}),  # skipped by the clocks in the clinic zone
        ],
    )
    def test_implausible_history_files_exit_2(
        self, tmp_path: Path, patient: dict[str, Any], session: dict[str, Any]
    ) -> None:
        path = history_file(tmp_path, [{**row("2026-11-30"), **session}], **patient)
        result = run("next", "X", "--history", str(path), "--date", "2026-12-07T09:00")
        assert result.exit_code == 2, result.stderr

    def test_soft_recommendation_exits_3(self, tmp_path: Path) -> None:
        limits = tmp_path / "l.toml"
        text = (
            Path(__file__)
            .resolve()
            .parents[1]
            .joinpath("ketadose", "data", "limits.toml")
            .read_text()
        )
        limits.write_text(text.replace('upper_soft = "1 mg/kg"', 'upper_soft = "0.6 mg/kg"', 1))
        path = history_file(tmp_path, [row("2026-11-02"), row("2026-11-04"), row("2026-11-06")])
        result = run(
            "next",
            "X",
            "--history",
            str(path),
            "--date",
            "2026-11-09T09:00",
            "--limits",
            str(limits),
            "--json",
        )
        assert json.loads(result.stdout)["decision"] == "escalate"
        assert result.exit_code == 3

    def test_csv_cells_cannot_be_formulas(self) -> None:
        add_patient()
        record("2026-11-02", "27", "--notes", '=HYPERLINK("x")')
        assert "'=HYPERLINK" in run("history", "P1", "--csv").stdout

    @pytest.mark.parametrize(
        "args", [["--sessions", "0"], ["--start", "9999-12-28"], ["--recovery", "999999999h"]]
    )
    def test_plan_bad_series_options_exit_2(self, args: list[str]) -> None:
        base = ["plan", "-p", "depression", "--weight", "80kg"]
        start = [] if "--start" in args else ["--start", "2026-11-30"]
        assert run(*base, *start, *args).exit_code == 2


# --- questionnaire scores -------------------------------------------------------------------


def score(*args: str, date: str = "2026-12-07T08:50") -> Any:
    return run("score", "record", "P1", "--date", date, *args)


def scores_json() -> Any:
    shown = run("score", "show", "P1", "--json")
    assert shown.exit_code == 0, shown.stderr
    return json.loads(shown.stdout)


class TestScores:
    """`score record` validates and stores every answer; a safety finding never passes silently."""

    def test_phq9_recorded_item_by_item(self) -> None:
        add_patient()
        result = score("--instrument", "phq9", "--items", "1,1,1,1,1,1,1,1,0")
        assert result.exit_code == 0, result.stderr
        assert result.stdout == ""
        assert "recorded score 1 for P1: PHQ-9 8 (mild)" in result.stderr
        (row,) = scores_json()["scores"]
        assert (row["items"], row["total"], row["band"]) == ([1] * 8 + [0], 8, "mild")
        assert row["date"] == "2026-12-07T08:50:00+01:00"
        (entry,) = json.loads(run("audit", "--json").stdout)["entries"]
        assert (entry["command"], entry["status"], entry["patient_id"]) == (
            "score record",
            "ok",
            "P1",
        )
        assert entry["inputs"]["items"] == "1,1,1,1,1,1,1,1,0"

    def test_item_9_without_acknowledgement_is_stored_flagged_and_exits_3(self) -> None:
        add_patient()
        result = score("-i", "phq9", "--items", "2,2,2,2,1,1,2,1,1")
        assert result.exit_code == 3
        assert "must be acknowledged" in result.stderr
        assert 'ketadose score acknowledge P1 1 --text "..."' in result.stderr
        (row,) = scores_json()["scores"]
        assert (row["total"], row["band"], row["needs_acknowledgement"]) == (14, "moderate", True)
        table = run("score", "show", "P1")
        assert "UNACKNOWLEDGED" in table.stdout
        (entry,) = json.loads(run("audit", "--json").stdout)["entries"]
        assert entry["status"] == "soft"
        assert entry["findings"][0]["code"] == "phq9-item-9"
        assert entry["findings"][0]["overridden"] is False

    def test_acknowledged_later_once(self) -> None:
        add_patient()
        assert score("-i", "phq9", "--items", "0,0,0,0,0,0,0,0,2").exit_code == 3
        done = run(
            "score",
            "acknowledge",
            "P1",
            "1",
            "--text",
            "crisis plan reviewed",
            "--clinician",
            "Dr B",
        )
        assert done.exit_code == 0, done.stderr
        (row,) = scores_json()["scores"]
        # acknowledged by who is acting (the OS user); the name given is the audit's claim
        assert (row["needs_acknowledgement"], row["acknowledged_by"], row["acknowledgement"]) == (
            False,
            os_user(),
            "crisis plan reviewed",
        )
        again = run("score", "acknowledge", "P1", "1", "--text", "again")
        assert again.exit_code == 2
        assert f"acknowledged already by {os_user()}" in again.stderr
        entries = json.loads(run("audit", "--json").stdout)["entries"]
        assert [e["command"] for e in entries] == ["score record", "score acknowledge"]
        assert entries[1]["override_reason"] == "crisis plan reviewed"
        assert entries[1]["findings"][0]["overridden"] is True

    def test_acknowledged_at_once(self) -> None:
        add_patient()
        result = score(
            "-i", "phq9", "--items", "0,0,0,0,0,0,0,0,1", "--acknowledge", "seen, plan agreed"
        )
        assert result.exit_code == 0, result.stderr
        (row,) = scores_json()["scores"]
        assert row["needs_acknowledgement"] is False
        assert row["acknowledgement"] == "seen, plan agreed"

    @pytest.mark.parametrize(
        ("args", "says"),
        [
            (("-i", "phq9", "--items", "0,0,0,0,0,0,0,0,0", "--acknowledge", "x"), "no safety"),
            (("-i", "phq9", "--items", "0,0,0,0,0,0,0,0,1", "--acknowledge", " "), "one line"),
            (("-i", "phq9", "--items", "2,2,2"), "9 items; 3 given"),
            (("-i", "phq9", "--items", "2,2,2,2,1,1,2,1,1.5"), "not a whole number"),
            (("-i", "phq9", "--items", "2,,2,2,1,1,2,1,1"), "item 2 is empty"),
            (("-i", "phq9", "--total", "14"), "item by item"),
            (("-i", "madrs", "--total", "61"), "0 to 60"),
            (("-i", "madrs", "--total", "28", "--items", "3,3,3,3,3,3,3,3,3,1"), "--items"),
            (("-i", "madrs"), "--items"),
            (("-i", "phq-9", "--items", "0"), "unknown instrument"),
        ],
    )
    def test_malformed_input_exits_2_and_stores_nothing(
        self, args: tuple[str, ...], says: str
    ) -> None:
        add_patient()
        result = score(*args)
        assert result.exit_code == 2
        assert says in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert scores_json()["scores"] == []

    def test_madrs_total_alone_and_trend(self) -> None:
        add_patient()
        assert score("-i", "madrs", "--total", "28").exit_code == 0
        assert score("-i", "madrs", "--total", "10", date="2026-12-21T08:50").exit_code == 0
        data = scores_json()
        assert [r["items"] for r in data["scores"]] == [None, None]
        assert [(r["response"], r["remission"]) for r in data["trends"]["madrs"]] == [
            (False, False),
            (True, True),
        ]
        assert "MADRS ▄▂ 28 -> 10 (of 60)" in run("score", "show", "P1").stdout

    def test_unknown_patient_and_bad_date(self) -> None:
        result = run(
            "score",
            "record",
            "P9",
            "-i",
            "gad7",
            "--items",
            "0,0,0,0,0,0,0",
            "--date",
            "2026-12-07T08:50",
        )
        assert result.exit_code == 2
        assert "P9" in result.stderr
        add_patient()
        assert score("-i", "gad7", "--items", "0,0,0,0,0,0,0", date="yesterday").exit_code == 2
        assert run("score", "show", "P9").exit_code == 2
        assert run("score", "acknowledge", "P1", "4", "--text", "x").exit_code == 2

    def test_unusable_store_exits_6(self, store_path: Path) -> None:
        store_path.write_bytes(b"this is not a database" * 100)
        result = score("-i", "gad7", "--items", "0,0,0,0,0,0,0")
        assert result.exit_code == 6
        assert run("score", "show", "P1").exit_code == 6
