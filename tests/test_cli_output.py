"""Uniform output (issue 14): every data command's formats, -o FILE, -o -, --force, schemas; - for
stdin wherever a file is read."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from ketadose.cli import RENDERERS, app
from ketadose.cli import sources as sources_module
from ketadose.cli.commands.schema import SchemaName
from ketadose.limits import shipped_bytes
from ketadose.render.records import AUDIT_COLUMNS
from ketadose.render.schema import DOCUMENTS, schema
from tests.test_output import closed_objects

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
CLINIC = ROOT / "examples" / "clinic-protocols.toml"
ANSI = re.compile(r"\x1b\[")


def run(*args: str, stdin: bytes | str | None = None) -> Any:
    return runner.invoke(app, list(args), input=stdin)


def ok(*args: str, stdin: bytes | str | None = None) -> Any:
    result = run(*args, stdin=stdin)
    assert result.exit_code == 0, (args, result.stderr)
    return result


def valid(name: str, text: str) -> dict[str, Any]:
    """The JSON text, checked against its command's schema."""
    document = schema(name)
    Draft202012Validator.check_schema(document)
    data: dict[str, Any] = json.loads(text)
    Draft202012Validator(document).validate(data)
    return data


@pytest.fixture
def store() -> None:
    """P1 with a session given and its readings (for patient show, session show, audit)."""
    ok("patient", "add", "P1", "-p", "depression", "--weight", "80kg", "--baseline", "30")
    ok("session", "record", "P1", "--date", "2026-11-25T09:00", "--score", "24")
    ok("session", "vitals", "P1", "--at", "2026-11-25T09:10", "--bp", "150/90", "--hr", "80")
    ok("next", "P1", "--date", "2026-11-27T09:00")  # every recommendation is audited
    phq9 = ("score", "record", "P1", "--instrument", "phq9", "--items")
    flagged = run(*phq9, "2,2,1,1,1,1,1,1,1", "--date", "2026-11-24T09:00")
    assert flagged.exit_code == 3  # item 9 answered: stored, flagged for acknowledgement
    ok(*phq9, "1,1,1,1,1,1,1,1,0", "--date", "2026-11-26T09:00")


#: Each data command this issue brings under the shared output code, and its schema.
COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "simulate": (
        ("simulate", "-p", "depression", "--weight", "80kg", "--step", "10min"),
        "simulate",
    ),
    "audit": (("audit",), "audit"),
    "patient show": (("patient", "show", "P1"), "patient"),
    "protocols list": (("protocols", "list"), "protocols"),
    "protocols show": (("protocols", "show", "depression"), "protocol"),
    "limits show": (("limits", "show"), "limits"),
    "limits show -p": (("limits", "show", "-p", "depression"), "limits"),
    "limits verify": (("limits", "verify", "--examples", "3"), "verify"),
    "session show": (("session", "show", "P1", "--at", "2026-11-25T12:00"), "session"),
    "config show": (("config", "show"), "config"),
    "score show": (("score", "show", "P1"), "score"),
}


@pytest.mark.usefixtures("store")
@pytest.mark.parametrize("name", COMMANDS)
class TestEveryDataCommand:
    """Each takes --json, --format, -o FILE, -o - and --force through the same code."""

    def test_json_validates_and_is_format_json(self, name: str) -> None:
        args, document = COMMANDS[name]
        text = ok(*args, "--json").stdout
        data = valid(document, text)
        assert data["schema_version"] == 2
        assert len(text) > 100 and not closed_objects(schema(document))
        assert ok(*args, "--format", "json").stdout == text

    def test_output_file_holds_what_stdout_would(self, name: str, tmp_path: Path) -> None:
        args, _ = COMMANDS[name]
        target = tmp_path / "out.json"
        result = ok(*args, "--json", "-o", str(target))
        assert result.stdout == ""
        assert f"ketadose: wrote {target}" in result.stderr
        assert target.read_text() == ok(*args, "--json").stdout

    def test_dash_is_stdout(
        self, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        args, _ = COMMANDS[name]
        monkeypatch.chdir(tmp_path)
        assert ok(*args, "--json", "-o", "-").stdout == ok(*args, "--json").stdout
        assert ok(*args, "-o", "-").stdout == ok(*args).stdout
        assert list(tmp_path.iterdir()) == []  # no file called "-"

    def test_force_without_a_file_is_refused(self, name: str) -> None:
        args, _ = COMMANDS[name]
        for extra in (("--force",), ("-o", "-", "--force")):
            result = run(*args, "--json", *extra)
            assert result.exit_code == 2
            assert result.stdout == ""
            assert result.stderr == (
                "ketadose: error: --force replaces an --output file: give -o FILE too\n"
            )

    def test_an_existing_file_needs_force(self, name: str, tmp_path: Path) -> None:
        args, _ = COMMANDS[name]
        target = tmp_path / "out.txt"
        target.write_text("old")
        refused = run(*args, "-o", str(target))
        assert refused.exit_code == 2
        assert refused.stderr == f"ketadose: error: {target} exists: use --force to replace it\n"
        assert target.read_text() == "old"
        ok(*args, "-o", str(target), "--force")
        table = target.read_text()
        assert table != "old" and table.strip()
        assert not ANSI.search(table)

    def test_a_format_it_does_not_fit_is_refused_first(self, name: str) -> None:
        args, _ = COMMANDS[name]
        result = run(*args, "--format", "fhir")
        assert result.exit_code == 2
        assert result.stdout == ""
        command = name.removesuffix(" -p")
        assert result.stderr.startswith(
            f"ketadose: error: --format fhir does not fit ketadose {command}"
        )
        assert "json" in result.stderr

    def test_two_formats_are_refused(self, name: str) -> None:
        args, _ = COMMANDS[name]
        result = run(*args, "--json", "--format", "table")
        assert result.exit_code == 2
        assert "--json and --format table: choose one" in result.stderr


class TestRefusedBeforeAnyWork:
    """A bad output combination stops the command before it reads or writes anything."""

    def test_no_store_is_opened(self, tmp_path: Path) -> None:
        missing = tmp_path / "none.sqlite3"
        result = run("audit", "--store", str(missing), "--format", "html")
        assert result.exit_code == 2  # the format, not the missing store (6)
        assert "does not fit ketadose audit" in result.stderr
        assert not missing.exists()

    def test_an_unknown_protocol_is_not_looked_up(self) -> None:
        result = run("protocols", "show", "no-such", "--force")
        assert result.exit_code == 2
        assert "give -o FILE too" in result.stderr


class TestCsv:
    """The commands with rows have a CSV too."""

    @pytest.mark.usefixtures("store")
    def test_audit(self) -> None:
        rows = list(csv.DictReader(io.StringIO(ok("audit", "--format", "csv").stdout)))
        assert tuple(rows[0]) == AUDIT_COLUMNS
        entries = json.loads(ok("audit", "--json").stdout)["entries"]
        assert [r["command"] for r in rows] == [e["command"] for e in entries]
        (index,) = [i for i, r in enumerate(rows) if r["command"] == "next"]
        assert json.loads(rows[index]["inputs"]) == entries[index]["inputs"]
        assert entries[index]["inputs"]["decision"] in ("escalate", "continue", "hold")
        assert rows[index]["findings"] == ";".join(f["code"] for f in entries[index]["findings"])

    def test_simulate_is_the_curve(self) -> None:
        args = COMMANDS["simulate"][0]
        rows = list(csv.DictReader(io.StringIO(ok(*args, "--format", "csv").stdout)))
        series = json.loads(ok(*args, "--json").stdout)["series"]
        assert len(rows) == len(series) > 10
        assert [float(r["time_min"]) for r in rows[:3]] == [0.0, 10.0, 20.0]
        assert float(rows[0]["concentration_ng_per_ml"]) == 0.0
        peak = max(float(r["concentration_ng_per_ml"]) for r in rows)
        assert peak == pytest.approx(max(p["concentration_ng_per_ml"] for p in series))

    def test_protocols(self) -> None:
        rows = list(csv.DictReader(io.StringIO(ok("protocols", "list", "--format", "csv").stdout)))
        depression = next(r for r in rows if r["id"] == "depression")
        assert (depression["route"], depression["sessions"], depression["weight_based"]) == (
            "iv",
            "6",
            "true",
        )
        listed = json.loads(ok("protocols", "list", "--json").stdout)["protocols"]
        assert [r["id"] for r in rows] == [p["id"] for p in listed]

    def test_config(self) -> None:
        rows = list(csv.DictReader(io.StringIO(ok("config", "show", "--format", "csv").stdout)))
        tz = next(r for r in rows if r["key"] == "tz")
        assert (tz["value"], tz["source"], tz["variable"]) == (
            "Europe/Berlin",
            "environment",
            "KETADOSE_TZ",
        )

    def test_formats_by_command(self) -> None:
        assert set(RENDERERS["patient show"]) == set(RENDERERS["history"])
        assert set(RENDERERS["simulate"]) == {"json", "csv"}
        assert set(RENDERERS["protocols show"]) == {"json"}


class TestSchemas:
    """Every data command has a schema; it says what is always there and refuses no new key."""

    def test_the_command_offers_every_document(self) -> None:
        assert [n.value for n in SchemaName] == list(DOCUMENTS)
        usage = " ".join(ok("schema", "--help").stdout.split())
        assert "describes: " + ", ".join(DOCUMENTS) + "." in usage

    @pytest.mark.parametrize("name", ["dose", "check", "plan"])
    def test_status_ready_and_library_are_required(self, name: str) -> None:
        assert {"schema_version", "status", "ready", "library"} <= set(schema(name)["required"])

    def test_next_requires_its_decision_status_and_ready(self) -> None:
        # next names no library of its own (its session, when there is one, does)
        required = set(schema("next")["required"])
        assert {"decision", "status", "ready", "session"} <= required
        assert schema("next")["properties"]["session"]["anyOf"][1] == {"type": "null"}

    def test_keys_with_defaults_are_required_too(self) -> None:
        # a finding's `overridden` has a default, and is written on every finding
        finding = schema("dose")["$defs"]["Finding"]
        assert {"severity", "code", "message", "overridden", "override_reason"} <= set(
            finding["required"]
        )
        assert "scores" in schema("history")["required"]

    def test_stored_findings_of_older_versions_still_validate(self) -> None:
        entries = {
            "schema_version": 2,
            "entries": [
                {
                    "at": "2026-11-25T09:00:00+01:00",
                    "user": "nurse",
                    "command": "dose",
                    "patient_id": None,
                    "status": "soft",
                    "override_reason": None,
                    "library_sha256": "0" * 64,
                    "id": 1,
                    "inputs": {"weight": "80kg"},
                    "findings": [{"severity": "soft", "code": "x", "message": "m"}],
                }
            ],
        }
        valid("audit", json.dumps(entries))

    def test_a_limits_document_is_one_shape_or_the_other(self) -> None:
        whole = json.loads(ok("limits", "show", "--json").stdout)
        one = json.loads(ok("limits", "show", "-p", "depression", "--json").stdout)
        check = Draft202012Validator(schema("limits"))
        assert check.is_valid(whole) and check.is_valid(one)
        del whole["routes"]
        assert not check.is_valid(whole)

    def test_a_refused_simulation_still_validates(self) -> None:
        args = COMMANDS["simulate"][0]
        refused = run(*args, "--dose", "3mg/kg", "--json")
        assert refused.exit_code == 4
        valid("simulate", refused.stdout)


class TestStdin:
    """`-` reads stdin wherever a file is read; only one option may read it."""

    def test_limits_validate(self) -> None:
        result = ok("limits", "validate", "-", stdin=shipped_bytes())
        assert result.stdout.startswith("valid: ketadose example limit library")
        bad = run("limits", "validate", "-", stdin="x = ")
        assert bad.exit_code == 5
        assert bad.stderr.startswith("ketadose: error: stdin: not valid TOML")

    def test_limits_verify(self) -> None:
        result = ok("limits", "verify", "-", "--examples", "3", "--json", stdin=shipped_bytes())
        assert valid("verify", result.stdout)["library"]["path"] == "stdin"

    def test_limits_option(self) -> None:
        dose = ("dose", "-p", "depression", "--weight", "80kg", "--json")
        from_stdin = json.loads(ok(*dose, "--limits", "-", stdin=shipped_bytes()).stdout)
        shipped = json.loads(ok(*dose).stdout)
        assert from_stdin["library"]["path"] == "stdin"
        assert from_stdin["library"]["sha256"] == shipped["library"]["sha256"]
        assert from_stdin["phases"] == shipped["phases"]

    def test_protocols_option(self) -> None:
        from_stdin = json.loads(
            ok(
                "protocols", "show", "crps", "--json", "--protocols", "-", stdin=CLINIC.read_bytes()
            ).stdout
        )
        from_file = json.loads(
            ok("protocols", "show", "crps", "--json", "--protocols", str(CLINIC)).stdout
        )
        assert from_stdin["protocol"]["library"]["path"] == "stdin"
        from_file["protocol"]["library"]["path"] = "stdin"
        assert from_stdin == from_file
        empty = run("protocols", "list", "--protocols", "-", stdin="")
        assert empty.exit_code == 5
        assert empty.stderr.startswith("ketadose: error: stdin: ")

    @pytest.mark.usefixtures("store")
    def test_next_history(self, tmp_path: Path) -> None:
        exported = tmp_path / "h.json"
        exported.write_text(ok("history", "P1", "--json").stdout)
        args = ("next", "P1", "--date", "2026-11-27T09:00", "--json")
        from_stdin = run(*args, "--history", "-", stdin=exported.read_bytes())
        from_file = run(*args, "--history", str(exported))
        # the unacknowledged PHQ-9 item 9 holds it for review (exit 3), from either source
        assert from_stdin.exit_code == from_file.exit_code == 3
        assert from_stdin.stdout == from_file.stdout
        assert json.loads(from_stdin.stdout)["sessions_given"] == 1
        bad = run(*args, "--history", "-", stdin="{}")
        assert bad.exit_code == 2
        assert bad.stderr.startswith("ketadose: error: stdin: ")

    @pytest.mark.usefixtures("store")
    def test_session_vitals_file(self) -> None:
        readings = "at,bp,hr\n2026-11-25T09:20,140/85,78\n2026-11-25T09:30,135/80,76\n"
        ok("session", "vitals", "P1", "--file", "-", stdin=readings)
        report = json.loads(ok("session", "show", "P1", "--json").stdout)
        assert [r["bp"] for r in report["readings"]] == ["150/90", "140/85", "135/80"]
        bad = run("session", "vitals", "P1", "--file", "-", stdin="at,bp\n")
        assert bad.exit_code == 2
        assert bad.stderr == "ketadose: error: stdin: no readings\n"

    @pytest.mark.parametrize(
        "args",
        [
            ("dose", "-p", "depression", "--weight", "80kg", "--protocols", "-", "--limits", "-"),
            ("limits", "validate", "-", "--protocols", "-"),
            ("next", "P1", "--history", "-", "--limits", "-"),
        ],
    )
    def test_only_one_option_reads_stdin(self, args: tuple[str, ...]) -> None:
        result = run(*args, stdin=shipped_bytes())
        assert result.exit_code == 2
        assert "reads stdin already: give a file here, not -" in result.stderr

    def test_the_one_line_through_main(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from ketadose.cli import main

        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"")))
        with pytest.raises(SystemExit) as exit_:
            main(["limits", "show", "--protocols", "-", "--limits", "-"])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert "--protocols reads stdin already" in err


class TestRead:
    """sources.read: a file or stdin, its bytes and its name in messages."""

    def test_a_file_is_named_by_its_path(self, tmp_path: Path) -> None:
        path = tmp_path / "x.toml"
        path.write_bytes(b"a = 1\n")
        assert sources_module.read(path) == (b"a = 1\n", str(path))

    def test_stdin_is_read_once(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"data")))
        assert sources_module.read(Path("-")) == (b"data", "stdin")
        assert sources_module.read(Path("-")) == (b"data", "stdin")  # not b"" the second time

    def test_stdin_too_large_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from ketadose.errors import ConfigError
        from ketadose.libfile import MAX_FILE_BYTES

        big = io.TextIOWrapper(io.BytesIO(b"#" * (MAX_FILE_BYTES + 1)))
        monkeypatch.setattr("sys.stdin", big)
        with pytest.raises(ConfigError, match="stdin: larger than 5 MB"):
            sources_module.read(Path("-"))

    def test_data_that_cannot_be_read_is_an_input_error(self, tmp_path: Path) -> None:
        from ketadose.errors import ConfigError, InputError

        missing = tmp_path / "none.csv"
        with pytest.raises(InputError, match=f"^{re.escape(str(missing))}: cannot read"):
            sources_module.read(missing, library=False)
        with pytest.raises(ConfigError):
            sources_module.read(missing)

    def test_a_missing_readings_file_is_exit_2(self, tmp_path: Path) -> None:
        result = run("session", "vitals", "P1", "--file", str(tmp_path / "none.csv"))
        assert result.exit_code == 2
        assert result.stderr.startswith(f"ketadose: error: {tmp_path / 'none.csv'}: cannot read")
