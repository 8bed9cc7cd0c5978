"""The shared output options: every format of every command, schemas, -o/--force, golden files."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from ketadose import atomic
from ketadose.cli import RENDERERS, app
from ketadose.errors import InputError
from ketadose.render import csv as csv_render
from ketadose.render.markdown import escape
from ketadose.render.schema import DOCUMENTS, schema

runner = CliRunner()
GOLDEN = Path(__file__).parent / "golden"
#: The same session every test asks about: 0.5 mg/kg x 80 kg = 40 mg, in 100 mL = 0.4 mg/mL,
#: over 40 min = 150 mL/h.
DOSE = ("dose", "-p", "depression", "--weight", "80kg", "--at", "2026-11-30T09:00")
PLAN = ("plan", "-p", "depression", "--weight", "80kg", "--start", "2026-11-30")
ANSI = re.compile(r"\x1b\[")


def run(*args: str) -> Any:
    return runner.invoke(app, list(args))


def ok(*args: str) -> str:
    result = run(*args)
    assert result.exit_code == 0, result.stderr
    return str(result.stdout)


def validator(name: str) -> Draft202012Validator:
    document = schema(name)
    Draft202012Validator.check_schema(document)
    return Draft202012Validator(document)


def closed_objects(node: Any, where: str = "") -> list[str]:
    """Where a schema has ``additionalProperties: false`` (none may)."""
    if isinstance(node, dict):
        found = [where] if node.get("additionalProperties") is False else []
        return found + [p for k, v in node.items() for p in closed_objects(v, f"{where}/{k}")]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in closed_objects(v, f"{where}/{i}")]
    return []


@pytest.fixture
def patient() -> None:
    """P1 in the store with two sessions given (for next and history)."""
    add = ("patient", "add", "P1", "-p", "depression", "--weight", "80kg", "--baseline", "30")
    assert run(*add).exit_code == 0
    for day, score in (("2026-11-23", "27"), ("2026-11-25", "24")):
        given = run(
            "session", "record", "P1", "--date", f"{day}T09:00", "--dose", "0.5mg/kg",
            "--duration", "40min", "--score", score,
        )  # fmt: skip
        assert given.exit_code == 0, given.stderr


NEXT = ("next", "P1", "--date", "2026-11-27T09:00")
HISTORY = ("history", "P1")


class TestSchemas:
    """Every JSON output has a valid JSON Schema, and real outputs validate against it."""

    @pytest.mark.parametrize("name", DOCUMENTS)
    def test_schema_is_valid_and_open(self, name: str) -> None:
        document = json.loads(ok("schema", name))
        Draft202012Validator.check_schema(document)
        assert document["properties"]["schema_version"] == {"const": 2, "type": "integer"}
        assert document["required"][0] == "schema_version"
        assert not closed_objects(document)  # adding a key never breaks a validating consumer

    def test_dose_and_check_validate(self) -> None:
        validator("dose").validate(json.loads(ok(*DOSE, "--json")))
        checked = run("check", *DOSE[1:], "--bp", "150/95", "--med", "lamotrigine", "--json")
        validator("check").validate(json.loads(checked.stdout))

    def test_refused_dose_validates(self) -> None:
        refused = run(*DOSE, "--dose", "3mg/kg", "--format", "json")
        assert refused.exit_code == 4
        data = json.loads(refused.stdout)
        validator("dose").validate(data)
        assert data["preparation"] is None

    @pytest.mark.parametrize(
        "protocol", ["depression", "crps", "esketamine-nasal", "neuropathic-pain"]
    )
    def test_plans_validate(self, protocol: str) -> None:
        result = run("plan", "-p", protocol, "--weight", "70kg", "--start", "2026-11-30", "--json")
        assert result.exit_code == 0, result.stderr
        validator("plan").validate(json.loads(result.stdout))

    @pytest.mark.usefixtures("patient")
    def test_next_and_history_validate(self) -> None:
        validator("next").validate(json.loads(ok(*NEXT, "--json")))
        history = json.loads(ok(*HISTORY, "--format", "json"))
        validator("history").validate(history)
        assert [s["score"] for s in history["sessions"]] == [27, 24]
        assert [s["improvement_pct"] for s in history["sessions"]] == [10, 20]

    def test_batch_records_validate(self, tmp_path: Path) -> None:
        rows = tmp_path / "p.csv"
        rows.write_text("id,weight\nA,80kg\nB,eighty\nC,80kg\n")
        result = run("batch", str(rows), "-p", "depression", "--start", "2026-11-30")
        records = [json.loads(line) for line in result.stdout.splitlines()]
        check = validator("batch")
        for record in records:
            check.validate(record)
        assert [r["status"] for r in records] == ["ok", "error", "ok"]

    def test_an_added_key_still_validates(self) -> None:
        data = json.loads(ok(*DOSE, "--json"))
        data["surprise"] = 1
        data["phases"][0]["surprise"] = {"nested": True}
        data["library"]["surprise"] = []
        assert validator("dose").is_valid(data)

    def test_a_missing_key_fails_validation(self) -> None:
        data = json.loads(ok(*DOSE, "--json"))
        check = validator("dose")
        for key in ("status", "ready", "library"):
            assert not check.is_valid({k: v for k, v in data.items() if k != key}), key
        del data["phases"][0]["dose_mg"]
        assert not check.is_valid(data)


class TestFormats:
    """Each command writes each format it fits, and refuses the others."""

    def test_formats_by_command(self) -> None:
        assert set(RENDERERS["plan"]) == {"json", "csv", "markdown", "html", "fhir"}
        assert set(RENDERERS["dose"]) == set(RENDERERS["check"]) == set(RENDERERS["plan"])
        assert set(RENDERERS["next"]) == {"json", "csv", "markdown"}
        assert set(RENDERERS["history"]) == {"json", "csv", "markdown", "html"}

    @pytest.mark.usefixtures("patient")
    @pytest.mark.parametrize(
        ("command", "fmt"),
        [(NEXT, "html"), (NEXT, "fhir"), (HISTORY, "fhir")],
        ids=["next-html", "next-fhir", "history-fhir"],
    )
    def test_unfit_formats_are_refused(self, command: tuple[str, ...], fmt: str) -> None:
        result = run(*command, "--format", fmt)
        assert result.exit_code == 2
        assert result.stdout == ""
        assert f"--format {fmt} does not fit ketadose {command[0]}" in result.stderr

    def test_two_formats_are_refused(self) -> None:
        result = run(*DOSE, "--json", "--format", "csv")
        assert result.exit_code == 2
        assert "--json and --format csv: choose one" in result.stderr
        assert run(*DOSE, "--json", "--format", "json").exit_code == 0

    def test_dose_csv_one_row_per_phase(self) -> None:
        rows = list(csv.DictReader(io.StringIO(ok(*DOSE, "--format", "csv"))))
        assert len(rows) == 1
        assert tuple(rows[0]) == csv_render.SESSION_COLUMNS
        row = rows[0]
        assert (row["dose_mg"], row["dose_mg_per_kg"], row["duration_min"]) == ("40", "0.5", "40")
        assert (row["pump_rate_ml_per_h_rounded"], row["final_mg_per_ml"]) == ("150", "0.4")
        assert (row["status"], row["ready"]) == ("ok", "true")

    def test_two_phase_csv(self) -> None:
        # alcohol-use-disorder: 0.11 mg/kg bolus (8.8 mg, not 8.799999999999999), then 0.6 mg/kg.
        text = ok("dose", "-p", "alcohol-use-disorder", "--weight", "80kg", "--format", "csv")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [(r["phase"], r["kind"], r["dose_mg"]) for r in rows] == [
            ("1", "bolus", "8.8"),
            ("2", "timed", "48"),
        ]

    def test_plan_csv_one_row_per_session(self) -> None:
        raw = run(*PLAN, "--patient-id", "P-7", "--format", "csv").stdout_bytes
        assert raw.count(b"\r\n") == 7  # RFC 4180 line ends (CliRunner's .stdout folds them)
        text = raw.decode()
        rows = list(csv.DictReader(io.StringIO(text)))
        assert tuple(rows[0]) == csv_render.PLAN_COLUMNS
        assert [r["date"] for r in rows] == [
            "2026-11-30", "2026-12-02", "2026-12-04", "2026-12-07", "2026-12-09", "2026-12-11",
        ]  # fmt: skip
        assert [r["accumulated_dose_mg"] for r in rows] == ["40", "80", "120", "160", "200", "240"]
        assert {r["pump_rates_ml_per_h"] for r in rows} == {"150"}
        assert {r["patient_id"] for r in rows} == {"P-7"}

    def test_csv_quoting_round_trips_and_defuses_formulas(self) -> None:
        awkward = 'P,"7"'
        rows = list(
            csv.DictReader(io.StringIO(ok(*PLAN, "--patient-id", awkward, "--format", "csv")))
        )
        assert rows[0]["patient_id"] == awkward
        rows = list(
            csv.DictReader(io.StringIO(ok(*PLAN, "--patient-id", "=1+1", "--format", "csv")))
        )
        assert rows[0]["patient_id"] == "'=1+1"

    @pytest.mark.usefixtures("patient")
    def test_next_and_history_csv(self) -> None:
        (row,) = csv.DictReader(io.StringIO(ok(*NEXT, "--format", "csv")))
        assert tuple(row) == csv_render.NEXT_COLUMNS
        assert (row["patient_id"], row["sessions_given"]) == ("P1", "2")
        history = list(csv.DictReader(io.StringIO(ok(*HISTORY, "--csv"))))
        assert history == list(csv.DictReader(io.StringIO(ok(*HISTORY, "--format", "csv"))))
        assert [r["score"] for r in history] == ["27", "24"]

    def test_markdown(self) -> None:
        text = ok(*DOSE, "--format", "markdown")
        assert "| infusion | 40 mg | 0.5 mg/kg | 40 min | 60 mg/h | 150 mL/h | 100 mL |" in text
        assert "**UNAPPROVED EXAMPLE LIBRARY**" in text
        plan = ok(*PLAN, "--format", "markdown", "--patient-id", "P|7")
        assert "- Patient: P\\|7" in plan  # a pipe would break the table
        assert plan.count("| 40 mg | 0.5 mg/kg | 40 min | 150 mL/h | ok |") == 6

    def test_markdown_escape(self) -> None:
        assert escape("a*b_c `d` [e](f) <g>\nh") == "a\\*b\\_c \\`d\\` \\[e\\](f) \\<g\\> h"

    @pytest.mark.usefixtures("patient")
    def test_next_and_history_markdown(self) -> None:
        assert "## Next session for P1:" in ok(*NEXT, "--format", "markdown")
        history = ok(*HISTORY, "--format", "markdown")
        assert "| 2026-11-25 09:00 | 40 mg | 0.5 mg/kg | 24 | 20 % |" in history

    def test_html_and_fhir(self) -> None:
        sheet = ok(*PLAN, "--format", "html", "--patient-id", "P-7")
        assert sheet.startswith("<!DOCTYPE html>")
        assert "P-7" in sheet
        assert "UNAPPROVED EXAMPLE LIBRARY" in sheet
        assert "<html" in ok(*DOSE, "--format", "html")
        bundle = json.loads(ok(*PLAN, "--format", "fhir"))
        assert bundle["resourceType"] == "Bundle"
        kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
        assert kinds.count("MedicationRequest") == 6
        assert kinds.count("CarePlan") == 1
        assert json.loads(ok(*DOSE, "--format", "fhir"))["resourceType"] == "Bundle"

    def test_table_is_the_default_and_plain_when_not_a_terminal(self) -> None:
        text = ok(*PLAN)
        assert "Sessions" in text
        assert not ANSI.search(text)


class TestOutputFile:
    """-o writes the whole file atomically, or nothing; it never replaces a file without --force."""

    def test_writes_the_file_and_nothing_on_stdout(self, tmp_path: Path) -> None:
        target = tmp_path / "plan.csv"
        result = run(*PLAN, "--format", "csv", "-o", str(target))
        assert result.exit_code == 0
        assert result.stdout == ""
        assert f"wrote {target}" in result.stderr
        assert target.read_text() == ok(*PLAN, "--format", "csv")

    def test_refuses_an_existing_file_without_force(self, tmp_path: Path) -> None:
        target = tmp_path / "plan.md"
        target.write_text("old")
        refused = run(*PLAN, "--format", "markdown", "-o", str(target))
        assert refused.exit_code == 2
        assert "exists: use --force" in refused.stderr
        assert target.read_text() == "old"
        forced = run(*PLAN, "--format", "markdown", "-o", str(target), "--force")
        assert forced.exit_code == 0
        assert target.read_text().startswith("## Plan:")

    @pytest.mark.parametrize("command", [DOSE, PLAN], ids=["dose", "plan"])
    def test_dash_is_stdout(
        self, command: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        for fmt in ("json", "csv", "table"):
            assert ok(*command, "--format", fmt, "-o", "-") == ok(*command, "--format", fmt)
        assert list(tmp_path.iterdir()) == []
        assert run(*command, "-o", "-", "--force").exit_code == 2

    @pytest.mark.usefixtures("patient")
    def test_dash_is_stdout_for_next_and_history(self) -> None:
        assert ok(*HISTORY, "--csv", "-o", "-") == ok(*HISTORY, "--csv")
        assert ok(*NEXT, "--json", "-o", "-") == ok(*NEXT, "--json")

    def test_force_needs_output(self) -> None:
        result = run(*PLAN, "--force")
        assert result.exit_code == 2
        assert "give -o FILE too" in result.stderr

    def test_table_to_a_file_has_no_colour(self, tmp_path: Path) -> None:
        target = tmp_path / "plan.txt"
        assert run(*PLAN, "-o", str(target)).exit_code == 0
        text = target.read_text()
        assert "Sessions" in text
        assert not ANSI.search(text)

    def test_a_refused_plan_is_still_written(self, tmp_path: Path) -> None:
        target = tmp_path / "plan.json"
        result = run(*PLAN, "--dose", "3mg/kg", "--json", "-o", str(target))
        assert result.exit_code == 4
        assert json.loads(target.read_text())["status"] == "hard"

    def test_failure_mid_write_leaves_the_old_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        target = tmp_path / "sheet.html"
        target.write_text("old sheet")

        def broken(fd: int) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "fsync", broken)
        result = run(*PLAN, "--format", "html", "-o", str(target), "--force")
        assert result.exit_code == 2
        assert "No space left on device" in result.stderr
        assert target.read_text() == "old sheet"
        assert [p.name for p in tmp_path.iterdir()] == ["sheet.html"]

    def test_exception_in_the_block_writes_nothing(self, tmp_path: Path) -> None:
        target = tmp_path / "out.jsonl"

        def killed() -> None:
            with atomic.atomic_file(target) as stream:
                stream.write(b"half")
                raise RuntimeError("killed")

        with pytest.raises(RuntimeError):
            killed()
        assert list(tmp_path.iterdir()) == []

    def test_new_file_has_the_usual_mode(self, tmp_path: Path) -> None:
        target = tmp_path / "x"
        old = os.umask(0o022)
        try:
            atomic.write_new(target, b"x")
        finally:
            os.umask(old)
        assert target.stat().st_mode & 0o777 == 0o644
        with pytest.raises(InputError, match="exists"):
            atomic.write_new(target, b"y")
        atomic.write_new(target, b"y", replace=True)
        assert target.read_bytes() == b"y"


class TestGolden:
    """Stable outputs match their golden files byte for byte (KETADOSE_UPDATE_GOLDEN=1 rewrites)."""

    CASES = {
        "dose.csv": (*DOSE, "--format", "csv"),
        "dose.md": (*DOSE, "--format", "markdown"),
        "plan.csv": (*PLAN, "--patient-id", "P-0042", "--format", "csv"),
        "plan.md": (*PLAN, "--patient-id", "P-0042", "--format", "markdown", "--price", "400-800"),
        "plan.json": (*PLAN, "--patient-id", "P-0042", "--json"),
    }

    @pytest.mark.parametrize("name", CASES)
    def test_golden(self, name: str) -> None:
        result = run(*self.CASES[name])
        assert result.exit_code == 0, result.stderr
        path = GOLDEN / name
        if os.environ.get("KETADOSE_UPDATE_GOLDEN"):
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(result.stdout_bytes)
        assert result.stdout_bytes == path.read_bytes()
