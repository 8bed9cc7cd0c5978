"""Hostile values and hostile files: each is read exactly or refused with one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ketadose.cli import app
from ketadose.errors import QuantityError
from ketadose.units import Kind, parse, parse_as

runner = CliRunner()


class TestHostileValues:
    """The rule for each hostile spelling, pinned: refused with this reason, never misread."""

    @pytest.mark.parametrize(
        ("text", "kind", "reason"),
        [
            ("NaNkg", Kind.WEIGHT, "is not a number followed by a unit"),
            ("infkg", Kind.WEIGHT, "is not a number followed by a unit"),
            ("-0kg", Kind.WEIGHT, "has a sign"),
            ("+80kg", Kind.WEIGHT, "has a sign"),
            ("1e308kg", Kind.WEIGHT, "is in exponent notation"),
            ("1e-320kg", Kind.WEIGHT, "is in exponent notation"),
            ("9" * 20 + "kg", Kind.WEIGHT, "more than 15 significant digits"),
            ("٨٠kg", Kind.WEIGHT, "contains U+0668"),
            ("８０kg", Kind.WEIGHT, "contains U+FF18"),
            ("8Okg", Kind.WEIGHT, 'unknown unit "Okg"'),
            ("0,5mg/kg", Kind.DOSE_PER_KG, "has a comma"),
            ("1,000mg", Kind.DOSE, "has a comma"),
            ("80kg;rm", Kind.WEIGHT, 'contains ";"'),
            ("", Kind.WEIGHT, "is empty"),
            ("   ", Kind.WEIGHT, "is empty"),
            ("8" * 10_000 + "kg", Kind.WEIGHT, "is longer than 64 characters"),
            ("80\x00kg", Kind.WEIGHT, "contains U+0000"),
            ("80\tkg", Kind.WEIGHT, "contains U+0009"),
            ("80 KG", Kind.WEIGHT, 'did you mean "kg"'),
            ("0.5 MG/KG", Kind.DOSE_PER_KG, 'did you mean "mg"'),
            ("0.5ug/kg", Kind.DOSE_PER_KG, 'write "mcg"'),
            ("0.5µg/kg", Kind.DOSE_PER_KG, 'write "mcg"'),
            ("5cc", Kind.VOLUME, 'write "mL"'),
            ("80", Kind.WEIGHT, "has no unit"),
            (".5mg/kg", Kind.DOSE_PER_KG, "needs a leading zero"),
            ("0kg", Kind.WEIGHT, "is zero"),
            ("80mL", Kind.WEIGHT, "which is not a weight"),
            ("0.5mg/g", Kind.DOSE_PER_KG, "per body weight is written /kg or /lb"),
        ],
    )
    def test_refused(self, text: str, kind: Kind, reason: str) -> None:
        with pytest.raises(QuantityError, match=None) as refused:
            parse(text, kind)
        assert reason in str(refused.value)

    @pytest.mark.parametrize(
        ("text", "kind", "value"),
        [
            ("500mcg/kg", Kind.DOSE_PER_KG, 0.5),  # mcg is mcg: 1000 times less than mg
            ("0.5mg/kg", Kind.DOSE_PER_KG, 0.5),
            ("80 kg", Kind.WEIGHT, 80.0),
            ("176lb", Kind.WEIGHT, 79.83225712),
            ("1.78m", Kind.HEIGHT, 178.0),
            ("4h", Kind.DURATION, 240.0),
        ],
    )
    def test_read_exactly(self, text: str, kind: Kind, value: float) -> None:
        assert parse_as(text, kind) == value

    def test_control_characters_never_reach_the_terminal(self) -> None:
        result = runner.invoke(app, ["dose", "-p", "\x1b[31mred\rx\ny", "--weight", "80kg"])
        assert result.exit_code == 2
        assert "\x1b" not in result.stderr
        assert "\r" not in result.stderr
        assert result.stderr.count("\n") == 1
        assert '"\\x1b[31mred x y"' in result.stderr  # line breaks are spaces


def library_bytes(kind: str) -> bytes:
    """A limit library file, broken in the named way."""
    valid = '[library]\nname = "x"\nversion = "1"\n[profiles.default]\n'
    return {
        "malformed": b'[library\nname = "x"\n',
        "huge": b"#" * (5 * 1024 * 1024 + 1),
        "binary": bytes(range(256)) * 4,
        "utf-16": valid.encode("utf-16"),
        "duplicate-keys": b'[library]\nname = "x"\nname = "y"\nversion = "1"\n',
        "deep-nesting": b"a = " + b"[" * 100_000 + b"]" * 100_000 + b"\n",
        "empty": b"",
    }[kind]


HOSTILE_FILES = ["malformed", "huge", "binary", "utf-16", "duplicate-keys", "deep-nesting", "empty"]


class TestHostileLibraries:
    """A broken limit library or protocol file exits 5 with one line naming the file."""

    @pytest.mark.parametrize("kind", HOSTILE_FILES)
    def test_limit_library(self, tmp_path: Path, kind: str) -> None:
        path = tmp_path / "limits.toml"
        path.write_bytes(library_bytes(kind))
        result = runner.invoke(app, ["limits", "validate", str(path)])
        assert result.exit_code == 5, result.stderr
        assert result.stdout == ""
        assert result.stderr.startswith(f"ketadose: error: {path}: ")
        assert result.stderr.count("\n") == 1

    @pytest.mark.parametrize("kind", HOSTILE_FILES)
    def test_protocol_file(self, tmp_path: Path, kind: str) -> None:
        path = tmp_path / "protocols.toml"
        path.write_bytes(library_bytes(kind))
        result = runner.invoke(
            app, ["dose", "-p", "depression", "--weight", "80kg", "--protocols", str(path)]
        )
        assert result.exit_code == 5, result.stderr
        assert result.stdout == ""
        assert str(path) in result.stderr

    def test_a_byte_order_mark_is_accepted(self, tmp_path: Path) -> None:
        shipped = (Path(__file__).parents[1] / "ketadose" / "data" / "limits.toml").read_bytes()
        path = tmp_path / "bom.toml"
        path.write_bytes(b"\xef\xbb\xbf" + shipped)
        result = runner.invoke(app, ["limits", "validate", str(path)])
        assert result.exit_code == 0, result.stderr


class TestHostileBatchFiles:
    """A batch file that cannot be read stops with exit 2 and one line; bad rows are records."""

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            (b"", "empty file"),
            ("id,weight\nP1,80kg\n".encode("utf-16"), "not UTF-8 text"),
            (bytes(range(128, 256)) * 8, "not UTF-8 text"),
            (b'id,weight\n"P1,80kg\n', None),  # an unclosed quote: an error record
            (b"id,weight\nP1,80kg\x00\n", None),
            (b"id,weight\n" + b"P1," + b"8" * 2000 + b"kg\n", None),
        ],
    )
    def test_files(self, tmp_path: Path, data: bytes, message: str | None) -> None:
        path = tmp_path / "p.csv"
        path.write_bytes(data)
        result = runner.invoke(
            app, ["batch", str(path), "-p", "depression", "--start", "2026-11-30"]
        )
        assert result.exit_code == 2, result.stderr
        assert "Traceback" not in result.stderr
        if message:
            assert message in result.stderr
        else:
            records = [json.loads(line) for line in result.stdout.splitlines()]
            assert records
            assert all(r["status"] == "error" and r["line"] >= 2 for r in records)


class TestHostileHistoryFiles:
    """next --history refuses a malformed, ambiguous or absurd file with exit 2."""

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            (b"{", "not a history file"),
            (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
            (
                b'{"patient": {"id": "P1", "id": "P2"}, "sessions": []}',
                "the key 'id' is given twice",
            ),
            ('{"patient": {}}'.encode("utf-16"), "not a history file"),
            (bytes(range(256)), "not a history file"),
            (b"#" * (5 * 1024 * 1024 + 1), "larger than 5 MB"),
        ],
    )
    def test_files(self, tmp_path: Path, data: bytes, message: str) -> None:
        path = tmp_path / "history.json"
        path.write_bytes(data)
        result = runner.invoke(app, ["next", "P1", "--history", str(path)])
        assert result.exit_code == 2, result.stderr
        assert message in result.stderr
        assert result.stderr.count("\n") == 1
