"""ketadose batch: rows in, checked plans (or error records) out, streamed, in order."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import pty
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ketadose.batch import COLUMNS, BatchStatus, BatchWork, header, open_input, record, rows, work
from ketadose.batch import write as batch_write
from ketadose.cli import app
from ketadose.dosing import DoseRequest
from ketadose.errors import InputError
from ketadose.limits import load_library as load_limits
from ketadose.models import Patient
from ketadose.parallel import ordered_write
from ketadose.planning import PlanRequest
from ketadose.protocols import load_library
from ketadose.render import csv as csv_render
from ketadose.render.batch import _Fragments, encoding, jsonl
from ketadose.units import format_number
from tests.factories import complete

runner = CliRunner()
START = ("--start", "2026-11-30")
ANSI = re.compile(rb"\x1b\[")


def batch(path: Path, *args: str) -> Any:
    return runner.invoke(app, ["batch", str(path), "-p", "depression", *START, *args])


def records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def write(tmp_path: Path, text: str, name: str = "patients.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


class TestRows:
    """Good rows become plans; a bad row becomes an error record and the run goes on."""

    def test_good_rows(self, tmp_path: Path) -> None:
        path = write(tmp_path, "id,weight,height,sex\nP1,80kg,178cm,male\nP2,176lb,,\n")
        result = batch(path)
        assert result.exit_code == 0, result.stderr
        first, second = records(result.stdout)
        assert (first["line"], first["id"], first["status"]) == (2, "P1", "ok")
        sessions = first["plan"]["sessions"]
        assert [s["total_dose_mg"] for s in sessions] == [40] * 6
        assert sessions[0]["date"] == "2026-11-30"
        # 176 lb = 79.83225712 kg; 0.5 mg/kg of it.
        assert second["plan"]["sessions"][0]["total_dose_mg"] == pytest.approx(39.91612856)
        assert "maintenance" not in first["plan"]  # the protocol's notes: protocols show has them
        assert "ketadose: 2 rows: 2 ok" in result.stderr

    def test_bad_rows_name_their_line_and_the_run_goes_on(self, tmp_path: Path) -> None:
        text = "id,weight,sex\nP1,80kg,male\nP2,80,male\nP3,80kg,other\nP4,80kg\n\nP5,80kg,female\n"
        result = batch(write(tmp_path, text))
        assert result.exit_code == 2
        out = records(result.stdout)
        assert [(r["line"], r["id"], r["status"]) for r in out] == [
            (2, "P1", "ok"),
            (3, "P2", "error"),
            (4, "P3", "error"),
            (5, None, "error"),
            (7, "P5", "ok"),
        ]
        assert out[1]["error"] == 'weight "80" has no unit; write e.g. 80kg or 176lb'
        assert out[2]["error"] == "sex 'other': use male or female"
        assert out[3]["error"] == "2 cells where the header has 3"
        assert all(r["plan"] is None for r in out[1:4])
        assert "some rows were refused" in result.stderr

    def test_limits_set_the_exit_code(self, tmp_path: Path) -> None:
        soft = batch(write(tmp_path, "id,weight,dose\nP1,80kg,\nP2,80kg,1.2mg/kg\n"))
        assert soft.exit_code == 3
        assert [r["status"] for r in records(soft.stdout)] == ["ok", "soft"]
        hard = batch(write(tmp_path, "id,weight,dose\nP1,80kg,3mg/kg\nP2,eighty,\n", "h.csv"))
        assert hard.exit_code == 4  # a hard limit outranks a refused row
        refused = records(hard.stdout)[0]
        assert refused["status"] == "hard"
        assert all(s["preparation"] is None for s in refused["plan"]["sessions"])

    def test_row_protocol_and_overrides(self, tmp_path: Path) -> None:
        text = "id,weight,protocol,rate,duration\nA,60kg,crps,0.25mg/kg/h,3h\nB,70kg,,,\n"
        result = runner.invoke(app, ["batch", str(write(tmp_path, text)), *START])
        out = records(result.stdout)
        assert out[0]["plan"]["protocol"]["id"] == "crps"
        phase = out[0]["plan"]["sessions"][0]["phases"][0]
        assert (phase["rate_mg_per_h"], phase["duration_min"]) == (15, 180)
        assert out[1]["error"] == "no protocol: give a protocol column or --protocol"

    def test_bom_and_case_in_the_header(self, tmp_path: Path) -> None:
        path = tmp_path / "bom.csv"
        path.write_bytes("\ufeffID,Weight\r\nP1,80kg\r\n".encode())
        result = batch(path)
        assert result.exit_code == 0, result.stderr
        assert records(result.stdout)[0]["id"] == "P1"


class TestRowErrorsNameColumnsAndFlags:
    """A row's error names a field its cells give by column, any other by its flag."""

    def test_a_missing_weight_is_the_weight_column(self, tmp_path: Path) -> None:
        result = batch(write(tmp_path, "id,weight,dosing_weight\nP1,,\nP2,80kg,ideal\n"))
        assert result.exit_code == 2
        first, second = (r["error"] for r in records(result.stdout))
        assert first == "this protocol doses by body weight: give the weight column, e.g. 80kg"
        assert second == (
            "dosing weight ideal needs the height column and the sex column (e.g. 178cm, male)"
        )

    def test_an_override_the_titration_sets_is_its_column(self, tmp_path: Path) -> None:
        text = "id,weight,protocol,rate\nP1,80kg,migraine,0.2mg/kg/h\n"
        result = runner.invoke(app, ["batch", str(write(tmp_path, text)), *START])
        (row,) = records(result.stdout)
        assert row["error"].startswith("the rate column: migraine is a titration")
        assert row["error"].endswith("(ketadose dose takes the rate column for one rate)")

    def test_a_bad_option_is_its_flag(self, tmp_path: Path) -> None:
        path = write(tmp_path, "id,weight\nP1,80kg\n")
        result = runner.invoke(
            app, ["batch", str(path), "-p", "depression-oral", *START, "--vial", "10mg/mL"]
        )
        assert result.exit_code == 2
        assert [r["error"] for r in records(result.stdout)] == [
            "--vial does not apply to the oral route"
        ]
        both = ["--vial", "10mg/mL", "--bag", "100mL"]
        result = runner.invoke(app, ["batch", str(path), "-p", "depression-oral", *START, *both])
        (row,) = records(result.stdout)
        assert row["error"] == "--vial, --bag does not apply to the oral route"

    def test_a_library_caller_reads_plain_names(self) -> None:
        library, limits = load_library(), load_limits()
        template = PlanRequest(
            dose=DoseRequest(patient=Patient(), vial_mg_per_ml=10.0),
            start=date(2026, 11, 30),
            zone=ZoneInfo("Europe/Berlin"),
        )
        row = (2, {"id": "P1", "weight": "80kg"})
        found = record(row, template, "depression-oral", library, limits)
        assert found.error == "vial does not apply to the oral route"
        missing = record((3, {"id": "P2"}), template, None, library, limits)
        assert missing.error == "no protocol: give a protocol column or default protocol"


class TestRefusedFiles:
    """A file that cannot be read as a batch stops before any output."""

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("", "empty file; it needs a header row"),
            ("id,wieght\nP1,80kg\n", "unknown column 'wieght'"),
            ("weight\n80kg\n", "the header needs an id column"),
            ("id,id\nP1,P2\n", "column 'id' is given twice"),
        ],
    )
    def test_bad_headers(self, tmp_path: Path, text: str, message: str) -> None:
        result = batch(write(tmp_path, text))
        assert result.exit_code == 2
        assert result.stdout == ""
        assert message in result.stderr

    def test_not_utf8(self, tmp_path: Path) -> None:
        path = tmp_path / "latin1.csv"
        path.write_bytes(b"id,weight\nP1,80kg\nJos\xe9,80kg\n")
        result = batch(path, "--jobs", "1")
        assert result.exit_code == 2
        assert "not UTF-8 text" in result.stderr

    def test_header_check_is_pure(self) -> None:
        assert header([" ID ", "Weight"], "f") == ["id", "weight"]
        with pytest.raises(InputError, match="unknown column 'dosee'"):
            header(["id", "dosee"], "f")
        assert set(COLUMNS) >= {"id", "weight", "height", "sex", "protocol", "dose"}


class TestOutput:
    """JSON Lines or CSV, to stdout or atomically to a file, the same whatever the job count."""

    def test_csv_format(self, tmp_path: Path) -> None:
        result = batch(write(tmp_path, "id,weight\nP1,80kg\nP2,x\n"), "--format", "csv")
        rows_out = list(csv.DictReader(io.StringIO(result.stdout)))
        assert tuple(rows_out[0]) == csv_render.BATCH_COLUMNS
        assert [r["line"] for r in rows_out] == ["2"] * 6 + ["3"]
        assert rows_out[0]["dose_mg"] == "40"
        assert (rows_out[-1]["status"], rows_out[-1]["patient_id"]) == ("error", "P2")
        assert rows_out[-1]["error"].startswith('weight "x"')

    def test_output_file(self, tmp_path: Path) -> None:
        path = write(tmp_path, "id,weight\nP1,80kg\n")
        target = tmp_path / "plans.jsonl"
        assert batch(path, "-o", str(target)).exit_code == 0
        assert records(target.read_text())[0]["id"] == "P1"
        again = batch(path, "-o", str(target))
        assert again.exit_code == 2
        assert "exists" in again.stderr
        assert batch(path, "-o", str(target), "--force").exit_code == 0

    @pytest.mark.parametrize("fmt", ["jsonl", "csv"])
    def test_jobs_do_not_change_the_output(self, tmp_path: Path, fmt: str) -> None:
        weights = [f"P{i},{40 + i % 90}.{i % 10}kg" for i in range(1050)]  # six chunks
        weights[123] = "P123,bad"
        path = write(tmp_path, "id,weight\n" + "\n".join(weights) + "\n")
        outputs = {}
        for jobs in ("1", "2", "3"):
            target = tmp_path / f"out-{jobs}.{fmt}"  # a real file, as a batch writes
            result = batch(path, "--jobs", jobs, "--format", fmt, "-o", str(target))
            assert result.exit_code == 2, result.stderr
            assert "1050 rows: 824 ok, 225 soft, 1 error" in result.stderr  # soft: over 120 kg
            outputs[jobs] = target.read_bytes()
        assert outputs["1"] == outputs["2"] == outputs["3"]
        if fmt == "jsonl":
            out = records(outputs["1"].decode())
            assert [r["line"] for r in out] == list(range(2, 1052))
            assert out[123]["status"] == "error"
        else:
            assert outputs["1"].startswith(b"line,patient_id,")
            assert outputs["1"].count(b"\r\n") == 1 + 1049 * 6 + 1

    def test_workers_write_to_stdout_in_order(self, tmp_path: Path) -> None:
        path = write(tmp_path, "id,weight\n" + "".join(f"P{i},80kg\n" for i in range(450)))
        args = ["batch", str(path), "-p", "depression", *START, "--jobs", "2"]
        done = subprocess.run(
            [sys.executable, "-m", "ketadose", *args], capture_output=True, check=False
        )
        assert done.returncode == 0, done.stderr
        ids = [json.loads(line)["id"] for line in done.stdout.splitlines()]
        assert ids == [f"P{i}" for i in range(450)]

    def test_stdin(self) -> None:
        result = runner.invoke(
            app, ["batch", "-", "-p", "depression", *START], input="id,weight\nP1,80kg\n"
        )
        assert result.exit_code == 0, result.stderr
        assert records(result.stdout)[0]["id"] == "P1"


class TestStreaming:
    """Rows are read and planned lazily: memory does not grow with the file."""

    @staticmethod
    def endless() -> Iterator[str]:
        yield "id,weight\n"
        for number in itertools.count():
            yield f"P{number},80kg\n"

    def test_rows_are_read_lazily(self) -> None:
        first = list(itertools.islice(rows(self.endless(), "endless"), 3))
        assert [line for line, _ in first] == [2, 3, 4]

    @pytest.mark.parametrize("jobs", [1, 2])
    def test_chunks_are_bounded_and_in_order(self, tmp_path: Path, jobs: int) -> None:
        def double(chunk: list[int]) -> tuple[int, bytes]:
            return chunk[0], b"".join(b"%d\n" % (2 * x) for x in chunk)

        with (tmp_path / "out").open("wb") as sink:
            results = ordered_write(double, itertools.count(), sink, jobs=jobs)
            firsts = [next(results) for _ in range(5)]  # an endless input: only 5 chunks made
            results.close()
        assert firsts == [0, 200, 400, 600, 800]
        numbers = [int(n) for n in (tmp_path / "out").read_bytes().split()]
        assert numbers[: 5 * 200] == [2 * x for x in range(5 * 200)]

    def test_a_failing_chunk_does_not_hang_the_others(self, tmp_path: Path) -> None:
        def fragile(chunk: list[int]) -> tuple[int, bytes]:
            if chunk[0] == 200:
                raise ValueError("chunk 1 failed")
            return chunk[0], b"x"

        with (tmp_path / "out").open("wb") as sink, pytest.raises(ValueError, match="chunk 1"):
            list(ordered_write(fragile, range(1000), sink, jobs=2))


class TestTerminal:
    """A progress bar on a terminal's stderr; nothing but the summary when it is not one."""

    ARGS = ("-m", "ketadose", "batch", "-", "-p", "depression", *START)

    def test_not_a_terminal(self) -> None:
        done = subprocess.run(
            [sys.executable, *self.ARGS],
            input=b"id,weight\nP1,80kg\n",
            capture_output=True,
            check=False,
            env={**os.environ, "TERM": "xterm-256color", "FORCE_COLOR": ""},
        )
        assert done.returncode == 0
        assert done.stderr == b"ketadose: 1 rows: 1 ok\n"
        assert not ANSI.search(done.stdout)

    def test_a_terminal_gets_a_progress_bar(self, tmp_path: Path) -> None:
        path = write(tmp_path, "id,weight\n" + "".join(f"P{i},80kg\n" for i in range(300)))
        leader, follower = pty.openpty()
        args = [sys.executable, "-m", "ketadose", "batch", str(path), "-p", "depression", *START]
        with subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=follower, env={**os.environ, "TERM": "xterm"}
        ) as process:
            os.close(follower)
            seen = b""
            while True:
                try:
                    part = os.read(leader, 4096)
                except OSError:
                    break
                if not part:
                    break
                seen += part
            assert process.wait(timeout=60) == 0
        os.close(leader)
        assert ANSI.search(seen)  # the bar draws with terminal codes
        assert b"300 rows: 300 ok" in seen


def template() -> Any:
    from datetime import date
    from zoneinfo import ZoneInfo

    from ketadose.dosing import DoseRequest
    from ketadose.models import Patient
    from ketadose.planning import PlanRequest

    return PlanRequest(
        zone=ZoneInfo("Europe/Berlin"),
        dose=DoseRequest(patient=Patient()),
        start=date(2026, 11, 30),
    )


def shipped_work(encode: Any = None) -> BatchWork:
    from ketadose.limits import load_library as load_limits
    from ketadose.protocols import load_library

    return work(template(), "depression", load_library(None), load_limits(None), encode or jsonl)


class TestInput:
    """The batch file's text: UTF-8 with or without a BOM, from a file or the caller's stdin."""

    def test_a_file(self, tmp_path: Path) -> None:
        path = tmp_path / "bom.csv"
        path.write_bytes("\ufeffid,weight\r\nP1,80kg\r\n".encode())
        with open_input(path) as source:
            assert (source.name, source.size, source.read) == (str(path), 23, 0)
            lines = list(source)
        assert lines == ["id,weight\r\n", "P1,80kg\r\n"]  # the BOM gone, the line ends kept
        assert source.read == 20
        assert source.stream.closed

    def test_stdin_is_read_and_left_open(self) -> None:
        stdin = io.TextIOWrapper(io.BytesIO("\ufeffid,weight\nP1,80kg\n".encode()))
        with open_input(Path("-"), stdin) as source:
            assert (source.name, source.size) == ("stdin", None)  # no size: no fileno
            assert list(source) == ["id,weight\n", "P1,80kg\n"]  # read as UTF-8, BOM gone
        assert not stdin.closed

    def test_stdin_redirected_from_a_file_has_a_size(self, tmp_path: Path) -> None:
        path = write(tmp_path, "id\nP1\n")
        with path.open() as stdin, open_input(Path("-"), stdin) as source:
            assert source.size == 6

    def test_refusals(self, tmp_path: Path) -> None:
        with pytest.raises(InputError, match=r"^cannot read .*nothere.csv: No such file"):
            open_input(tmp_path / "nothere.csv").__enter__()
        with pytest.raises(InputError, match="no standard input"):
            open_input(Path("-")).__enter__()

        class Closed(io.StringIO):
            @property
            def buffer(self) -> Any:
                raise OSError(9, "stdin is closed")

        with pytest.raises(InputError, match="^cannot read -: stdin is closed$"):
            open_input(Path("-"), Closed()).__enter__()
        path = tmp_path / "latin1.csv"
        path.write_bytes(b"id\nP1\nJos\xe9\n")
        with open_input(path) as source, pytest.raises(InputError) as caught:
            list(source)
        assert str(caught.value) == f"{path}: not UTF-8 text"  # the first block was bad
        path.write_bytes(b"id\n" + b"P1\n" * 5000 + b"Jos\xe9\n")
        with open_input(path) as source, pytest.raises(InputError) as caught:
            list(source)
        assert re.fullmatch(r".*: not UTF-8 text \(after line \d+\)", str(caught.value))
        assert source.read > 8000  # the good blocks' lines were given


class TestWork:
    """The work of a batch: checked up front, and picklable, so spawned workers can run it."""

    ITEMS: list[Any] = [(2, {"id": "P1", "weight": "80kg"}), (3, "2 cells where the header has 1")]

    def test_a_chunk(self) -> None:
        statuses, data = shipped_work()(self.ITEMS)
        assert statuses == ["ok", "error"]
        first, second = records(data.decode())
        assert first["schema_version"] == 2
        assert (first["id"], first["plan"]["sessions"][0]["total_dose_mg"]) == ("P1", 40)
        assert (second["line"], second["error"]) == (3, "2 cells where the header has 1")

    @pytest.mark.parametrize("fmt", ["jsonl", "csv"])
    def test_it_pickles_and_gives_the_same_bytes(self, fmt: str) -> None:
        import pickle

        _, encode = encoding(fmt)  # type: ignore[arg-type]
        chunk_work = shipped_work(encode)
        again = pickle.loads(pickle.dumps(chunk_work))
        assert again == chunk_work
        assert again(self.ITEMS) == chunk_work(self.ITEMS)

    def test_checked_up_front(self, tmp_path: Path) -> None:
        from ketadose.limits import load_library as load_limits

        shipped = shipped_work()
        # The shipped library limits no predicted peak: a batch does not predict one (~10%).
        assert shipped.template.predict_peaks is False
        path = tmp_path / "peak.toml"
        path.write_text(
            complete(
                '[library]\nname = "peak"\nversion = "1"\n'
                '[profiles.default.session.predicted_peak]\nupper_soft = "170 ng/mL"\n'
                'upper_hard = "250 ng/mL"\nsource = "site policy"\nevidence = "SITE-POLICY"\n'
            )
        )
        peaks = work(template(), None, shipped.library, load_limits(path), jsonl)
        assert peaks.template.predict_peaks is True
        with pytest.raises(InputError, match="nosuch"):
            work(template(), "nosuch", shipped.library, shipped.limits, jsonl)


class TestWrite:
    """Records written in order after the header, counted by status, atomically to a file."""

    TEXT = "id,weight,dose\nP1,80kg,\nP2,80kg,1.2mg/kg\nP3,eighty,\n"

    def test_to_stdout(self, tmp_path: Path) -> None:
        stdout = io.BytesIO()
        seen: list[int] = []
        header, encode = encoding("csv")
        with open_input(write(tmp_path, self.TEXT)) as source:
            counts = batch_write(
                shipped_work(encode), source, stdout, header=header, progress=seen.append
            )
        assert counts == {"ok": 1, "soft": 1, "hard": 0, "error": 1}
        text = stdout.getvalue().decode()
        assert text.startswith("line,patient_id,")
        assert text.count("\r\n") == 1 + 2 * 6 + 1
        assert seen == [len(self.TEXT)]  # one chunk, every character read

    def test_to_a_file_whole_or_not_at_all(self, tmp_path: Path) -> None:
        target = tmp_path / "out.jsonl"
        stdout = io.BytesIO()
        with open_input(write(tmp_path, self.TEXT)) as source:
            batch_write(shipped_work(), source, stdout, output=target)
        assert [r["id"] for r in records(target.read_text())] == ["P1", "P2", "P3"]
        assert stdout.getvalue() == b""
        bad = write(tmp_path, "id,wieght\nP1,80kg\n", "bad.csv")
        with open_input(bad) as source, pytest.raises(InputError, match="unknown column"):
            batch_write(shipped_work(), source, stdout, output=tmp_path / "new.jsonl")
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "bad.csv",
            "out.jsonl",
            "patients.csv",
        ]
        again = write(tmp_path, self.TEXT.replace("P1", "Q1"), "again.csv")
        with open_input(again) as source, pytest.raises(InputError, match="exists"):
            batch_write(shipped_work(), source, stdout, output=target)
        with open_input(again) as source:
            batch_write(shipped_work(), source, stdout, output=target, overwrite=True)
        assert records(target.read_text())[0]["id"] == "Q1"


class TestSpawn:
    """Where fork is missing or unsafe (Windows, macOS), spawned workers give the same bytes."""

    @pytest.mark.parametrize("fmt", ["jsonl", "csv"])
    def test_spawned_workers_write_what_one_process_writes(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
    ) -> None:
        import multiprocessing

        from ketadose import parallel

        lines = [f"P{i},{40 + i % 90}.{i % 10}kg" for i in range(450)]  # three chunks
        lines[7] = "P7,bad"
        path = write(tmp_path, "id,weight\n" + "\n".join(lines) + "\n")

        def run(name: str, *args: str) -> bytes:
            target = tmp_path / f"{name}.{fmt}"  # a real file: else all runs in this process
            result = batch(path, "--format", fmt, "-o", str(target), *args)
            assert result.exit_code == 2, result.stderr
            assert "450 rows: 349 ok, 100 soft, 1 error" in result.stderr
            return target.read_bytes()

        one = run("one", "--jobs", "1")
        forked = run("forked", "--jobs", "2")
        contexts: list[str | None] = []
        real = multiprocessing.get_context

        def recording(method: str | None = None) -> Any:
            contexts.append(method)
            return real(method)

        monkeypatch.setattr(parallel, "forks", lambda: False)
        monkeypatch.setattr(multiprocessing, "get_context", recording)
        spawned = run("spawned", "--jobs", "2")
        assert contexts == ["spawn"]  # the work travelled: it did not fall back to this process
        assert spawned == one == forked


class TestStreams:
    """``-o -`` is stdout; stdin can be read by one input only."""

    def test_dash_output_is_stdout(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        path = write(tmp_path, "id,weight\nP1,80kg\n")
        to_stdout = batch(path, "-o", "-", "--jobs", "1")
        assert to_stdout.exit_code == 0, to_stdout.stderr
        assert to_stdout.stdout == batch(path, "--jobs", "1").stdout
        assert records(to_stdout.stdout)[0]["id"] == "P1"
        assert not (tmp_path / "-").exists()  # never a file called "-"

    def test_two_readers_of_stdin_are_refused(self) -> None:
        result = runner.invoke(
            app, ["batch", "-", "--protocols", "-", "-p", "depression", *START], input="id\nP1\n"
        )
        assert result.exit_code == 2
        assert "reads stdin already" in result.stderr
        assert result.stdout == ""


def _file(rows_: list[list[str]]) -> list[Any]:
    """Generated rows as a batch file's items (written by csv, read by :func:`rows`)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "weight", "height", "sex", "age", "protocol", "dose", "rate",
                     "dosing_weight"])  # fmt: skip
    writer.writerows(rows_)
    return list(rows(out.getvalue().splitlines(True), "generated.csv"))


def _shipped(encode: Any, reuse: int) -> BatchWork:
    return work(
        template(), "depression", load_library(None), load_limits(None), encode, reuse=reuse
    )


def _cell(good: list[str], bad: list[str]) -> st.SearchStrategy[str]:
    """A cell: mostly good (so that most rows are planned), sometimes bad."""
    return st.sampled_from(good * 3 + bad)


#: A generated row: id, weight, height, sex, age, protocol, dose, rate, dosing_weight; good
#: cells, bad ones and blanks, from small sets so that rows repeat.
_ROW = st.tuples(
    # ids with commas, quotes, formula starts, non-ASCII; blanks and unprintables
    _cell(["P1", "P2", "P,3", 'P"4', "=P5", "Zoë", " P7 ", "-9"], ["", "P\x078"]),
    _cell(["80kg", "80.0kg", "176lb", "45kg", "130kg", "60kg", "100kg"], ["39kg", "0kg", "x", ""]),
    # heights that give one weight BMI findings of one kind with other BMIs in the message
    _cell(["180cm", "140cm", "145cm", "150cm", "200cm", "6ft", "160cm", ""], ["abc"]),
    _cell(["male", "female", ""], ["other"]),
    _cell(["", "40y", "70y", "66y"], ["17y", "30"]),
    _cell(
        [
            "",
            "",
            "depression",
            "esketamine-nasal",
            "migraine",
            "depression-oral",
            "depression-im",
            "crps",
        ],
        ["nosuch"],
    ),
    _cell(["", "", "", ""], ["0.5mg/kg", "0.75mg/kg", "40mg", "5mg/kg", "mg"]),
    _cell(["", "", "", ""], ["0.5mg/kg/h", "2mg/kg/h", "bad"]),
    _cell(["", ""], ["actual", "ideal", "adjusted", "lean", "bogus"]),
).map(list)
#: Rows repeated, whole or with another id, height, sex or age (another patient of the same
#: weight and dose): most of a real batch repeats an input.
_BATCH = st.lists(_ROW, min_size=1, max_size=8).flatmap(
    lambda base: st.lists(
        st.tuples(st.sampled_from(base), _ROW, st.sets(st.sampled_from([0, 2, 3, 4]))).map(
            lambda drawn: [
                drawn[1][i] if i in drawn[2] else cell for i, cell in enumerate(drawn[0])
            ]
        ),
        min_size=1,
        max_size=16,
    )
)


class TestReuse:
    """Rows that share an input share its record: the same bytes as planning every row."""

    @staticmethod
    def _uncached(fmt: str, items: list[Any]) -> tuple[list[BatchStatus], bytes]:
        _, encode = encoding(fmt)  # type: ignore[arg-type]
        return _shipped(encode, 0)(items)

    @settings(max_examples=40)
    @given(
        rows_=_BATCH,
        split=st.integers(0, 16),
        size=st.sampled_from([1, 2, 2048]),
        plain=st.sampled_from([0, 20_000, _Fragments.room]),
    )
    def test_the_same_bytes_with_and_without_reuse(
        self, rows_: list[list[str]], split: int, size: int, plain: int
    ) -> None:
        # plain: the bytes of records kept uncompressed (none, a few, all), the rest compressed
        items = _file(rows_)
        items.append((99, "3 cells where the header has 9"))  # a row that cannot be read
        budget = _Fragments.room
        _Fragments.room = plain
        try:
            for fmt in ("jsonl", "csv"):
                _, encode = encoding(fmt)
                reused = _shipped(encode, size)
                first, second = reused(items[:split]), reused(items[split:])
                statuses, data = self._uncached(fmt, items)
                assert (first[0] + second[0], first[1] + second[1]) == (statuses, data)
                del reused
                assert _Fragments.room == plain  # what the records held is given back
        finally:
            _Fragments.room = budget

    def test_records_kept_uncompressed_within_the_budget(self) -> None:
        items = _file([[f"P{i}", f"{60 + i % 3}kg", "", "", "", "", "", "", ""] for i in range(9)])
        _, encode = encoding("jsonl")
        budget = _Fragments.room
        reused = _shipped(encode, 16)
        reused(items)
        fills = [fill for _, fill in reused.reuse.memo.values()]
        assert len(fills) == 3
        assert all(isinstance(fill, _Fragments) and fill.plain is not None for fill in fills)
        held = sum(fill.kept for fill in fills if isinstance(fill, _Fragments))
        assert held > 3 * 5000 and _Fragments.room == budget - held
        _Fragments.room = held // 2  # room for one more: the rest compressed
        try:
            again = _shipped(encode, 16)
            assert again(items) == reused(items)
            kinds = [fill.plain is None for _, fill in again.reuse.memo.values()]  # type: ignore[attr-defined]
            assert sorted(kinds) == [False, True, True]
        finally:
            del again, fills, reused  # each record gives back what it held
            _Fragments.room = budget

    def test_a_hit_does_not_leak_one_patients_findings_to_another(self) -> None:
        # Same weight throughout: actual-weight doses are one programme, yet age (65 y is a
        # soft limit), height (BMI) and, for the ideal weight, height and sex differ.
        people = [
            ["OLD", "80kg", "180cm", "male", "70y", "", "", "", ""],
            ["YOUNG", "80kg", "180cm", "male", "40y", "", "", "", ""],
            ["SHORT", "80kg", "140cm", "male", "40y", "", "", "", ""],
            ["OLD2", "80kg", "180cm", "male", "70y", "", "", "", ""],
            ["CHILD", "80kg", "180cm", "male", "17y", "", "", "", ""],
            ["TALL-IDEAL", "80kg", "190cm", "male", "40y", "", "", "", "ideal"],
            ["SHORT-IDEAL", "80kg", "155cm", "female", "40y", "", "", "", "ideal"],
            ["YOUNG2", "80kg", "180cm", "female", "40y", "", "", "", ""],
        ]
        items = _file(people)
        reused = _shipped(encoding("jsonl")[1], 2048)
        reused(items)  # a record is kept when its input comes again:
        reused(items)  # each is kept now,
        statuses, data = reused(items)  # and each row is one kept (another row's) record
        got = {r["id"]: r for r in records(data.decode())}
        assert data == self._uncached("jsonl", items)[1]
        codes = {
            name: {f["code"] for f in r["plan"]["sessions"][0]["findings"]}
            for name, r in got.items()
        }
        assert "age-high" in codes["OLD"] and "age-high" in codes["OLD2"]
        assert "age-high" not in codes["YOUNG"] | codes["YOUNG2"] | codes["SHORT"]
        assert "bmi-high" in codes["SHORT"] and "bmi-high" not in codes["YOUNG"]
        assert got["OLD2"]["plan"]["patient"]["age_years"] == 70
        assert got["YOUNG2"]["plan"]["patient"]["sex"] == "female"
        doses = {n: got[n]["plan"]["sessions"][0]["total_dose_mg"] for n in got}
        assert doses["TALL-IDEAL"] > doses["SHORT-IDEAL"]
        assert doses["YOUNG"] == doses["OLD"] == 40
        # Below 18 y is a hard limit: that plan is refused, the adults' after it are not.
        assert "age-low" in codes["CHILD"] and got["CHILD"]["plan"]["ready"] is False
        # OLD2 has OLD's record, YOUNG2 YOUNG's: six distinct inputs were planned.
        assert len(reused.reuse.memo) == 6
        assert statuses == ["soft", "ok", "soft", "soft", "hard", "ok", "ok", "ok"]

    def test_one_record_for_one_weight_whatever_the_bmi(self) -> None:
        # A BMI finding states the BMI (so the height): rows of one weight and one kind of
        # BMI finding share a record, each with its own BMI in its own finding.
        people = [
            ["SHORT", "100kg", "150cm", "female", "", "", "", "", ""],
            ["SHORTER", "100kg", "145cm", "female", "", "", "", "", ""],
            ["SHORTEST", "100kg", "140cm", "male", "", "", "", "", ""],
            ["TALL", "100kg", "190cm", "male", "", "", "", "", ""],
            ["SHORTER2", "100kg", "145cm", "male", "70y", "", "", "", ""],
        ]
        items = _file(people)
        reused = _shipped(encoding("jsonl")[1], 2048)
        statuses, data = reused(items)
        assert data == self._uncached("jsonl", items)[1]
        got = {r["id"]: r for r in records(data.decode())}

        def bmi(name: str) -> list[tuple[float, str]]:
            found = got[name]["plan"]["sessions"][-1]["findings"]
            return [(f["value"], f["message"]) for f in found if f["code"] == "bmi-high"]

        # Each its own BMI, in the finding's value and its message, in every session.
        for name, height in (("SHORT", 1.5), ("SHORTER", 1.45), ("SHORTEST", 1.4)):
            assert got[name]["plan"]["patient"]["bmi"] == pytest.approx(100 / height**2)
            ((value, message),) = bmi(name)
            assert value == got[name]["plan"]["patient"]["bmi"]
            assert message.startswith(f"BMI {format_number(value)} kg/m2 exceeds")
        assert bmi("TALL") == []
        assert bmi("SHORTER")[0][1] != bmi("SHORT")[0][1]
        # The three short ones share a record, as do TALL's; SHORTER2's age finding (70 y)
        # is a finding of another kind: three records for five rows.
        assert len(reused.reuse.memo) == 3
        assert reused.reuse.hits == 2
        assert statuses == ["soft", "soft", "soft", "ok", "soft"]

    def test_the_key_holds_every_field_of_the_plan_request_but_dose_and_id(self) -> None:
        # Today every field but the dose and id is the batch's; a per-row column added to one
        # of them must give another key, never another row's record.
        from dataclasses import replace

        from ketadose.reuse import reuse_key

        entry = load_library(None).get_protocol("depression")
        base = replace(template(), dose=DoseRequest(patient=Patient(weight_kg=80)))
        key = reuse_key(entry, base, ())
        assert reuse_key(entry, replace(base, patient_id="OTHER"), ()) == key
        for change in (
            {"start": date(2026, 12, 7)},
            {"sessions": 4},
            {"override_reason": "generated: clinic policy"},
            {"intake_min": 30.0},
        ):
            assert reuse_key(entry, replace(base, **change), ()) != key, change
        heavier = replace(base, dose=DoseRequest(patient=Patient(weight_kg=81)))
        assert reuse_key(entry, heavier, ()) != key

    @pytest.mark.parametrize("fmt", ["jsonl", "csv"])
    def test_a_record_without_the_findings_given_is_not_cut(self, fmt: str) -> None:
        # Were the patient's findings as given not in the record's sessions (a gate that
        # found others), a kept record would carry the first row's words to every row.
        from ketadose.batch import _entry, _planned, _request
        from ketadose.models import Finding, Severity
        from ketadose.render.batch import Encoder

        encode = Encoder(fmt)  # type: ignore[arg-type]
        ((line, cells),) = _file([["P1", "100kg", "150cm", "female", "", "", "", "", ""]])
        assert not isinstance(cells, str)
        entry = _entry(cells, "depression", load_library(None))
        result = _planned(line, entry, _request(cells, template()), load_limits(None))
        assert result.plan is not None
        own = tuple(f for f in result.plan.sessions[0].findings if f.code == "bmi-high")
        assert len(own) == 1 and encode.fragments(result, own) is not None
        absent = Finding(severity=Severity.SOFT, code="bmi-high", message="BMI 99 kg/m2", value=99)
        cut = encode.fragments(result, (absent,))
        # JSON Lines writes findings whole: one it cannot find refuses the cut. The CSV writes
        # only their codes (which the key holds), so its cut does not depend on the words.
        assert (cut is None) == (fmt == "jsonl")

    def test_bounded_least_recently_used(self) -> None:
        from ketadose.reuse import Reuse

        kept = Reuse(2)
        kept.put(("a",), "ok", lambda line, pid, patient, own: b"a")
        kept.put(("b",), "ok", lambda line, pid, patient, own: b"b")
        assert kept.get(("a",)) is not None  # now the most recent
        kept.put(("c",), "ok", lambda line, pid, patient, own: b"c")
        assert list(kept.memo) == [("a",), ("c",)]
        # Met once, a key is only remembered; met again, its record is kept.
        assert (kept.again(("d",)), kept.again(("d",)), kept.again(("d",))) == (False, True, False)
        off = Reuse(0)
        off.put(("a",), "ok", lambda line, pid, patient, own: b"a")
        assert not off.memo

    def test_pickled_empty(self) -> None:
        import pickle

        reused = _shipped(encoding("csv")[1], 16)
        reused(_file([["P1", "80kg", "", "", "", "", "", "", ""]] * 2))
        assert len(reused.reuse.memo) == 1
        again = pickle.loads(pickle.dumps(reused))
        assert (again.reuse.size, len(again.reuse.memo)) == (16, 0)

    def test_a_record_that_cannot_be_cut_is_not_kept(self) -> None:
        from ketadose.render.batch import Encoder

        error = record((2, "bad"), template(), "depression", load_library(None), load_limits(None))
        assert Encoder("jsonl").fragments(error) is None
        assert Encoder("csv").fragments(error) is None
        # A patient id that is the stand-in itself: its text cannot be cut surely.
        tricky = _file([["ketadose-per-row-id-7c1e5a0f", "80kg", "", "", "", "", "", "", ""]])
        reused = _shipped(encoding("jsonl")[1], 16)
        assert reused(tricky) == self._uncached("jsonl", tricky)
