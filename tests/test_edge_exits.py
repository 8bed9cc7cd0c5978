"""Hostile edges of the process (output targets, standard streams, encodings, far dates, a
tampered store, Ctrl-C) each end with a documented exit code and one line, never exit 1."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import typer
from typer.testing import CliRunner

from ketadose.atomic import write_new
from ketadose.cli import app, application, env, exits
from ketadose.errors import InputError
from ketadose.events import AdverseEvent, Grade
from ketadose.inputs import DATE_RANGE
from ketadose.records import AuditEntry, PatientRecord, SessionRecord
from ketadose.store import TRIGGERS, Store

SCRIPT = Path(sys.executable).parent / "ketadose"
DOSE = ["dose", "-p", "depression", "--weight", "80kg"]
runner = CliRunner()


def ketadose(
    *args: str,
    stdin: Any = subprocess.DEVNULL,
    stdout: Any = subprocess.PIPE,
    stderr: Any = subprocess.PIPE,
    close: tuple[int, ...] = (),
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run the console script in a real process, with the descriptors in ``close`` closed."""

    def closing() -> None:
        for fd in close:
            os.close(fd)

    return subprocess.run(
        [str(SCRIPT), *args],
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        preexec_fn=closing if close else None,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def one_line(stderr: str | bytes, start: str = "ketadose: error: ") -> str:
    """The single message line (at most one ``ketadose:`` line, no traceback)."""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    assert "Traceback" not in text
    lines = text.splitlines()
    assert len(lines) == 1, text
    assert lines[0].startswith(start), text
    return lines[0]


def leftovers(directory: Path) -> list[str]:
    """Temporary files an atomic write would have left behind."""
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def fifo(path: Path) -> None:
    os.mkfifo(path)


def device(path: Path) -> None:
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a private twin of /dev/null
    except PermissionError:
        pytest.skip("creating a device node needs root")


def unix_socket(path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))


def directory(path: Path) -> None:
    path.mkdir()


def symlink(path: Path) -> None:
    (path.parent / "target.json").write_text("kept")
    path.symlink_to("target.json")


class TestOutputTargets:
    """-o FILE --force replaces a regular file only; anything else is exit 2 before any work."""

    @pytest.mark.parametrize(
        ("make", "kind"),
        [
            (fifo, "is a named pipe (FIFO), not a regular file"),
            (device, "is a character device, not a regular file"),
            (unix_socket, "is a socket, not a regular file"),
            (symlink, "is a symbolic link, not a regular file"),
        ],
    )
    def test_special_files_are_refused_unopened(
        self, tmp_path: Path, store_path: Path, make: Callable[[Path], None], kind: str
    ) -> None:
        target = tmp_path / "out.json"
        make(target)
        before = os.lstat(target)
        # --bp 200/120 gives findings, so the run would write the audit log: it must not start.
        done = ketadose(*DOSE, "--bp", "200/120", "--json", "-o", str(target), "--force")
        assert done.returncode == 2
        assert done.stdout == b""
        assert kind in one_line(done.stderr)
        after = os.lstat(target)
        assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
        assert not store_path.exists()  # refused before any work
        assert leftovers(tmp_path) == []
        if make is symlink:
            assert (tmp_path / "target.json").read_text() == "kept"

    def test_a_directory_is_refused(self, tmp_path: Path) -> None:
        target = tmp_path / "out"
        target.mkdir()
        done = ketadose(*DOSE, "--json", "-o", str(target), "--force")
        assert done.returncode == 2
        assert "is a directory" in one_line(done.stderr)
        assert target.is_dir()
        assert list(target.iterdir()) == []

    def test_a_missing_directory_is_refused_before_any_work(
        self, tmp_path: Path, store_path: Path
    ) -> None:
        target = tmp_path / "missing" / "out.json"
        done = ketadose(*DOSE, "--bp", "200/120", "--json", "-o", str(target))
        assert done.returncode == 2
        assert f"there is no directory {target.parent}" in one_line(done.stderr)
        assert not store_path.exists()
        assert not target.parent.exists()

    def test_batch_refuses_a_fifo_before_reading(self, tmp_path: Path) -> None:
        target = tmp_path / "out.jsonl"
        os.mkfifo(target)
        rows = tmp_path / "rows.csv"
        rows.write_text("id,weight\nP1,80kg\n")
        done = ketadose(
            "batch", str(rows), "-p", "depression", "--start", "2026-11-30", "-o", str(target),
            "--force",
        )  # fmt: skip
        assert done.returncode == 2
        assert "named pipe" in one_line(done.stderr)
        assert stat.S_ISFIFO(os.lstat(target).st_mode)

    def test_a_regular_file_is_still_replaced(self, tmp_path: Path) -> None:
        target = tmp_path / "out.json"
        target.write_text("old")
        done = ketadose(*DOSE, "--json", "-o", str(target), "--force")
        assert done.returncode == 0, done.stderr
        assert json.loads(target.read_text())["schema_version"]
        assert leftovers(tmp_path) == []

    def test_the_library_checks_again_at_the_rename(self, tmp_path: Path) -> None:
        target = tmp_path / "late"
        os.mkfifo(target)  # as if made while the content was being computed
        with pytest.raises(InputError, match="named pipe"):
            write_new(target, b"data", replace=True)
        assert stat.S_ISFIFO(os.lstat(target).st_mode)
        assert leftovers(tmp_path) == []


class TestStandardStreams:
    """Closed, gone or full standard streams: a documented exit code, never 1 or 120."""

    @pytest.mark.parametrize("args", [[*DOSE, "--json"], DOSE, ["--help"]])
    def test_closed_stdout_is_exit_2(self, args: list[str]) -> None:
        done = ketadose(*args, stdout=None, close=(1,))
        assert done.returncode == 2
        assert "cannot write output: stdout is closed" in one_line(done.stderr)

    def test_closed_stdout_with_output_file_is_fine(self, tmp_path: Path) -> None:
        target = tmp_path / "out.json"
        done = ketadose(*DOSE, "--json", "-o", str(target), stdout=None, close=(1,))
        assert done.returncode == 0
        one_line(done.stderr, "ketadose: wrote ")
        assert json.loads(target.read_text())["phases"]

    def test_closed_stdout_never_lands_in_the_store(self, store_path: Path) -> None:
        # With fd 1 closed, the store would be opened as fd 1; it must stay a valid store.
        done = ketadose(*DOSE, "--bp", "200/120", "--json", stdout=None, close=(1,))
        assert done.returncode == 2
        with Store.open(store_path) as db:
            assert [e.command for e in db.audit()] == ["dose"]

    @pytest.mark.parametrize("args", [[*DOSE, "--json"], ["limits", "show"]])
    def test_reader_gone_is_exit_2(self, args: list[str]) -> None:
        process = subprocess.Popen(
            [str(SCRIPT), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # before the child writes: every write is EPIPE
        stderr = process.stderr.read()
        assert process.wait(timeout=60) == 2
        assert "output closed before it was all written" in one_line(stderr, "ketadose: ")

    def test_full_stdout_is_exit_2(self) -> None:
        with open("/dev/full", "wb") as full:
            done = ketadose("limits", "show", stdout=full)
        assert done.returncode == 2
        assert "cannot write output" in one_line(done.stderr)

    def test_closed_stdin_is_exit_2(self) -> None:
        done = ketadose("batch", "-", "-p", "depression", "--start", "2026-11-30", close=(0,))
        assert done.returncode == 2
        assert done.stdout == b""
        assert "cannot read -: stdin is closed" in one_line(done.stderr)

    @pytest.mark.parametrize(
        ("args", "code"),
        [(["dose", "-p", "nope", "--weight", "80kg"], 2), ([*DOSE, "--json"], 0)],
    )
    def test_closed_stderr_keeps_the_exit_code(self, args: list[str], code: int) -> None:
        done = ketadose(*args, stderr=None, close=(2,))
        assert done.returncode == code
        if code == 0:
            assert json.loads(done.stdout)["phases"]

    @pytest.mark.parametrize(
        ("args", "code"),
        [
            (["dose", "-p", "nope", "--weight", "80kg"], 2),
            (["dose", "--bogus"], 2),
            ([*DOSE, "--bp", "200/120", "--json"], 4),
            ([*DOSE, "--json"], 0),
        ],
    )
    def test_full_stderr_keeps_the_exit_code(self, args: list[str], code: int) -> None:
        with open("/dev/full", "wb") as full:
            done = ketadose(*args, stderr=full)
        assert done.returncode == code

    def test_full_stderr_after_writing_a_file(self, tmp_path: Path) -> None:
        target = tmp_path / "out.json"
        with open("/dev/full", "wb") as full:
            done = ketadose(*DOSE, "--json", "-o", str(target), stderr=full)
        assert done.returncode == 0
        assert json.loads(target.read_text())["phases"]


class TestEncodings:
    """stdout is UTF-8 whatever PYTHONIOENCODING says; stderr escapes what it cannot carry."""

    PLAN = ["plan", "-p", "depression", "--weight", "80kg", "--start", "2026-11-30"]

    @pytest.mark.parametrize("encoding", ["ascii", "latin-1", "utf-16"])
    @pytest.mark.parametrize("form", [["--format", "html"], ["--format", "markdown"], []])
    def test_stdout_is_utf8(self, encoding: str, form: list[str]) -> None:
        expected = ketadose(*self.PLAN, *form, env={"PYTHONIOENCODING": "utf-8"})
        assert expected.returncode == 0
        done = ketadose(*self.PLAN, *form, env={"PYTHONIOENCODING": encoding})
        assert done.returncode == 0, done.stderr
        assert done.stdout == expected.stdout
        assert done.stdout.decode("utf-8") != done.stdout.decode("ascii", "replace")

    def test_a_message_stderr_cannot_carry_is_escaped(self) -> None:
        done = ketadose("dose", "-p", "dé—", "--weight", "80kg", env={"PYTHONIOENCODING": "ascii"})
        assert done.returncode == 2
        assert 'unknown protocol "d\\xe9\\u2014"' in one_line(done.stderr)


class TestFarDates:
    """A date outside inputs.DATE_RANGE is exit 2 with one line, never an OverflowError."""

    @pytest.mark.parametrize(
        "args",
        [
            [*DOSE, "--at", "9999-12-31T23:00"],
            [*DOSE, "--at", "1899-12-31T23:00"],
            [*DOSE, "--at", "2026-11-30T09:00", "--previous", "9999-12-31T23:00=40mg"],
            [*DOSE, "--at", "2026-11-30T09:00", "--last-session", "0001-01-01T00:00"],
            ["check", *DOSE[1:], "--at", "2100-01-01T00:00"],
            ["plan", *DOSE[1:], "--start", "9999-12-25"],
            ["plan", *DOSE[1:], "--start", "2026-11-30", "--closed", "9999-12-31"],
            ["simulate", *DOSE[1:], "--plan", "--start", "9999-12-25"],
            ["batch", "-", "-p", "depression", "--start", "9999-12-25"],
        ],
    )
    def test_refused(self, args: list[str]) -> None:
        result = runner.invoke(app, args, input="id,weight\nP1,80kg\n")
        assert result.exit_code == 2, result.stderr
        assert "is not a plausible treatment date" in one_line(result.stderr)

    def test_the_bounds_are_usable(self) -> None:
        first, last = DATE_RANGE
        at = f"{last.isoformat()}T23:00"
        assert runner.invoke(app, [*DOSE, "--at", at, "--json"]).exit_code == 0
        start = ["plan", *DOSE[1:], "--start", last.isoformat(), "--json"]
        assert runner.invoke(app, start).exit_code == 0
        assert runner.invoke(app, [*DOSE, "--at", f"{first.isoformat()}T00:00"]).exit_code == 0

    @pytest.mark.parametrize("command", [["session", "record", "P1"], ["next", "P1"]])
    def test_store_commands(self, command: list[str]) -> None:
        add = ["patient", "add", "P1", "-p", "depression", "--weight", "80kg", "--baseline", "30"]
        assert runner.invoke(app, add).exit_code == 0
        result = runner.invoke(app, [*command, "--date", "9999-12-31T23:00"])
        assert result.exit_code == 2, result.stderr
        assert "--date" in one_line(result.stderr)

    def test_history_file(self, tmp_path: Path) -> None:
        path = tmp_path / "history.json"
        patient = {"id": "P1", "protocol": "depression", "baseline": 30, "weight_kg": 80}
        session = {"date": "9999-12-31T23:00", "total_dose_mg": 40}
        path.write_text(json.dumps({"patient": patient, "sessions": [session]}))
        result = runner.invoke(app, ["next", "P1", "--history", str(path)])
        assert result.exit_code == 2, result.stderr
        assert "sessions[0].date" in one_line(result.stderr)


AT = datetime(2026, 11, 30, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))


def filled_store(path: Path) -> None:
    """A store written through the API: one patient, one session with an event, one audit line."""
    with Store.open(path) as db:
        db.add_patient(
            PatientRecord(id="P1", protocol="depression", baseline=30, weight_kg=80, sex="male"),
            at=AT,
        )
        db.record_session(
            SessionRecord(
                patient_id="P1",
                at=AT,
                protocol="depression",
                dose_mg=40,
                score=20,
                adverse_events=(AdverseEvent("nausea", Grade.MILD),),
            )
        )
        db.append_audit(
            AuditEntry(
                at=AT,
                user="tester",
                command="dose",
                patient_id="P1",
                inputs_json="{}",
                findings_json="[]",
                status="soft",
                override_reason=None,
                library_sha256="0" * 64,
            )
        )


def tamper(path: Path, statement: str) -> None:
    """Edit the store behind ketadose's back (CHECK constraints and every trigger off)."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA ignore_check_constraints = ON")
        for trigger in TRIGGERS:
            conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        conn.execute(statement)
    conn.close()


PATIENT_READERS = [
    ["history", "P1"],
    ["history", "P1", "--json"],
    ["patient", "show", "P1"],
    ["next", "P1", "--date", "2026-12-07T09:00"],
    ["session", "record", "P1", "--date", "2026-12-07T09:00"],
]


class TestTamperedStore:
    """A row edited outside ketadose is exit 6 naming the table, row and column."""

    @pytest.mark.parametrize("command", PATIENT_READERS)
    @pytest.mark.parametrize(
        ("statement", "where"),
        [
            ("UPDATE sessions SET at = 'yesterday'", "sessions row 1: at"),
            ("UPDATE sessions SET at = '9999-12-31T23:00:00'", "sessions row 1: at"),
            ("UPDATE sessions SET at = x'00'", "sessions row 1: at"),
            ("UPDATE sessions SET dose_mg = 'forty'", "sessions row 1: dose_mg"),
            ("UPDATE sessions SET dose_mg = -40", "sessions row 1: dose_mg"),
            ("UPDATE sessions SET dose_mg = 9e999", "sessions row 1: dose_mg"),
            ("UPDATE sessions SET score = x'00ff'", "sessions row 1: score"),
            ("UPDATE sessions SET phases_json = '[{'", "sessions row 1: phases_json"),
            ("UPDATE sessions SET phases_json = '[NaN]'", "sessions row 1: phases_json"),
            ("UPDATE sessions SET bp_peak_systolic = 'high'", "bp_peak_systolic"),
            ("UPDATE session_adverse_events SET event = ''", "session_adverse_events"),
            ("UPDATE patients SET baseline = 'thirty'", "patients row 'P1': baseline"),
            ("UPDATE patients SET sex = 'other'", "patients row 'P1': sex"),
            ("UPDATE patients SET created_at = '2026-13-01'", "patients row 'P1': created_at"),
            ("UPDATE measurements SET weight_kg = 0", "weight_kg"),
            ("UPDATE measurements SET weight_kg = 'heavy'", "weight_kg"),
            ("DELETE FROM measurements", "patients row 'P1': weight"),
        ],
    )
    def test_patient_rows(
        self, store_path: Path, command: list[str], statement: str, where: str
    ) -> None:
        filled_store(store_path)
        tamper(store_path, statement)
        result = runner.invoke(app, command)
        assert result.exit_code == 6, result.stderr
        line = one_line(result.stderr)
        assert where in line
        assert "changed outside ketadose" in line

    @pytest.mark.parametrize("json_flag", [[], ["--json"]])
    @pytest.mark.parametrize(
        ("statement", "column"),
        [
            ("UPDATE audit SET at = 'now'", "at"),
            ("UPDATE audit SET status = 'fine'", "status"),
            ("UPDATE audit SET findings_json = '[NaN]'", "findings_json"),
            ("UPDATE audit SET inputs_json = '{'", "inputs_json"),
            ("UPDATE audit SET user = ''", "user"),
            ("UPDATE audit SET patient_id = x'5031'", "patient_id"),
        ],
    )
    def test_audit_rows(
        self, store_path: Path, json_flag: list[str], statement: str, column: str
    ) -> None:
        filled_store(store_path)
        tamper(store_path, statement)
        result = runner.invoke(app, ["audit", *json_flag])
        assert result.exit_code == 6, result.stderr
        assert f"audit row 1: {column} " in one_line(result.stderr)
        assert result.stdout == ""

    def test_untampered_store_reads(self, store_path: Path) -> None:
        filled_store(store_path)
        for command in [*PATIENT_READERS[:3], ["audit", "--json"]]:
            result = runner.invoke(app, command)
            assert result.exit_code == 0, (command, result.stderr)

    def test_a_session_time_without_offset_is_refused(self, store_path: Path) -> None:
        # Since schema 2 every session time carries its UTC offset; one without was edited in.
        filled_store(store_path)
        tamper(store_path, "UPDATE sessions SET at = '2026-12-01T09:00:00'")
        result = runner.invoke(app, ["history", "P1"])
        assert result.exit_code == 6, result.stderr
        assert "a time without a UTC offset" in one_line(result.stderr)

    def test_writers_refuse_what_readers_would(self, store_path: Path) -> None:
        filled_store(store_path)
        with Store.open(store_path) as db:
            entry = db.audit()[0]
            with pytest.raises(InputError, match="status must be one of"):
                db.append_audit(AuditEntry(**{**_fields(entry), "id": None, "status": "fine"}))
            with pytest.raises(InputError, match="findings_json is not valid JSON"):
                db.append_audit(
                    AuditEntry(**{**_fields(entry), "id": None, "findings_json": "[NaN]"})
                )
            with pytest.raises(InputError, match="outside 2000-01-01 to 2099-12-31"):
                db.record_session(
                    SessionRecord(
                        patient_id="P1",
                        at=datetime(1999, 1, 1, tzinfo=UTC),
                        protocol="depression",
                        dose_mg=1,
                    )
                )


def _fields(entry: AuditEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in AuditEntry.__slots__}


class TestInterrupt:
    """Ctrl-C anywhere is exit 130 and one line, no traceback, no partial file."""

    def test_in_a_command_body(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def interrupted(path: Path | None) -> Any:
            raise KeyboardInterrupt

        monkeypatch.setattr(env, "library", interrupted)
        result = runner.invoke(app, [*DOSE, "--json"])
        assert result.exit_code == 130
        assert one_line(result.stderr, "ketadose: ") == "ketadose: interrupted"

    def test_in_main(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        def interrupted(args: list[str]) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(application, "_main_command", interrupted)
        monkeypatch.setattr(application, "standard_streams", lambda: None)
        with pytest.raises(SystemExit) as done:
            application.main()
        assert done.value.code == 130
        assert capsys.readouterr().err == "ketadose: interrupted\n"

    def test_through_main(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The console script's own path (main(argv), Click, the command): 130, not 1."""

        def interrupted(path: Path | None) -> Any:
            raise KeyboardInterrupt

        monkeypatch.setattr(env, "library", interrupted)
        monkeypatch.setattr(application, "standard_streams", lambda: None)
        with pytest.raises(SystemExit) as done:
            application.main([*DOSE, "--json"])
        assert done.value.code == 130
        assert capsys.readouterr() == ("", "ketadose: interrupted\n")

    def test_click_abort(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Click's Abort (Ctrl-C at a prompt, outside a command's body) is 130 too."""
        with pytest.raises(SystemExit) as done, exits.parsing():
            raise typer.Abort
        assert done.value.code == 130
        assert capsys.readouterr().err == "ketadose: interrupted\n"

    def test_a_real_sigint(self, tmp_path: Path) -> None:
        target = tmp_path / "out.jsonl"
        process = subprocess.Popen(
            [str(SCRIPT), "batch", "-", "-p", "depression", "--start", "2026-11-30",
             "-o", str(target)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        assert process.stdin is not None
        process.stdin.write(b"id,weight\nP1,80kg\n")
        process.stdin.flush()
        time.sleep(3)  # started, and blocked reading the rest of stdin
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == 130
        assert one_line(stderr, "ketadose: ") == "ketadose: interrupted"
        assert stdout == b""
        assert not target.exists()
        assert leftovers(tmp_path) == []
