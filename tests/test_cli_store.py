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

runner = CliRunner()


def run(*args: str) -> Any:
    return runner.invoke(app, list(args))


def add_patient() -> None:
    result = run("patient", "add", "P1", "-p", "depression", "--weight", "80kg", "--baseline", "30")
    assert result.exit_code == 0, result.stderr


def record(day: str, score: str, *extra: str) -> Any:
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
            "2026-11-02T09:00:00",
            "2026-11-04T09:00:00",
            "2026-11-06T09:00:00",
        ]
        assert [r["total_dose_mg"] for r in rows] == [40, 40, 40]
        assert [r["dose_mg_per_kg"] for r in rows] == [0.5, 0.5, 0.5]
        assert [r["improvement_pct"] for r in rows] == pytest.approx([10, 20, 50])
        assert rows[0]["bp_peak"] == "150/92"
        table = list(csv.DictReader(io.StringIO(run("history", "P1", "--csv").stdout)))
        assert [row["score"] for row in table] == ["27.0", "24.0", "15.0"]

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
        assert data["earliest_date"] == "2026-11-09T09:00:00"
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
        assert entries[-1]["user"] == "Dr B"
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
