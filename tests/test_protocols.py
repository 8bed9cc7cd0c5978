"""Tests for ketadose.protocols: the shipped library, clinic files, and validation errors."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from ketadose.errors import ConfigError, InputError
from ketadose.protocols import SHIPPED_FILE, library_from, load_file, load_library
from ketadose.units import Kind
from tests.factories import REQUIRED_IDS as REQUIRED

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "ketadose" / "data" / SHIPPED_FILE
CLINIC = ROOT / "examples" / "clinic-protocols.toml"

REQUIRED_IDS = set(REQUIRED)

MINIMAL = """\
[library]
name = "t"
version = "1"

[[protocol]]
id = "p"
name = "P"
category = "psychiatric"
route = "iv"
summary = "s"
references = ["r"]

[[protocol.phases]]
kind = "timed"
dose = "0.5 mg/kg"
duration = "40 min"
source = "Singh 2016"
evidence = "HIGH"

[protocol.series]
sessions = 6
per_week = [2, 3]
source = "Singh 2016"
evidence = "HIGH"

[protocol.preparation]
final_volume = "100 mL"
source = "MECP 2024"
evidence = "MED"
"""


def load_text(text: str) -> None:
    load_file(text.encode(), "clinic.toml")


class TestShippedLibrary:
    """The shipped library validates, has every required protocol, and is unapproved."""

    def test_has_every_required_protocol(self) -> None:
        assert set(load_library()) >= REQUIRED_IDS

    def test_is_an_unapproved_example(self) -> None:
        entry = load_library()["depression"]
        assert entry.library.approved is False
        assert len(entry.library.sha256) == 64

    def test_every_number_has_a_source_and_evidence(self) -> None:
        document = tomllib.loads(SHIPPED.read_text(encoding="utf-8"))
        numbers = 0
        for protocol in document["protocol"]:
            sections = [
                *protocol["phases"],
                protocol["series"],
                *protocol.get("escalation", []),
                *[s for s in (protocol.get("response"), protocol.get("preparation")) if s],
            ]
            for section in sections:
                numbers += 1
                assert len(section["source"]) >= 3, (protocol["id"], section)
                assert section["evidence"] in {"HIGH", "MED", "LOW", "COMPUTED", "SITE-POLICY"}
        assert numbers >= 3 * len(REQUIRED_IDS)

    def test_nothing_not_confirmed_is_shipped(self) -> None:
        assert "NOT CONFIRMED" not in SHIPPED.read_text(encoding="utf-8").upper()

    def test_published_programmes(self) -> None:
        library = load_library()
        depression = library["depression"].protocol
        assert [
            (p.dose.value, p.duration.value) for p in depression.phases if p.dose and p.duration
        ] == [(0.5, 40)]
        dakwar = library["cocaine-use-disorder"].protocol
        doses = [p.dose.value for p in dakwar.phases if p.dose]
        durations = [p.duration.value for p in dakwar.phases if p.duration]
        assert doses == [0.11, 0.6]
        assert durations == [2, 50]
        crps = library["crps"].protocol.phases[0]
        assert crps.rate is not None and crps.cap is not None and crps.duration is not None
        assert (crps.rate.kind, crps.rate.value) == (Kind.RATE_PER_KG, 0.35)
        assert crps.cap.value == 25
        assert crps.duration.value == 240


class TestClinicFile:
    """A clinic's file adds protocols and replaces shipped ones with the same id."""

    def test_adds_and_is_approved(self) -> None:
        library = load_library(CLINIC)
        entry = library["dakwar-test"]
        assert entry.library.approved is True
        assert entry.library.path == str(CLINIC)
        assert entry.overrides_shipped is False
        assert set(library) >= REQUIRED_IDS

    def test_replaces_same_id(self) -> None:
        entry = load_library(CLINIC)["crps"]
        assert entry.overrides_shipped is True
        assert entry.protocol.phases[0].cap is not None
        assert entry.protocol.phases[0].cap.value == 20

    def test_unknown_protocol_lists_known_ones(self) -> None:
        with pytest.raises(
            InputError, match=r'unknown protocol "nope"; known protocols: .*depression'
        ):
            load_library().get_protocol("nope")

    def test_missing_file_is_a_config_error(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="cannot read"):
            load_library(tmp_path / "missing.toml")

    def test_bytes_named_as_given(self) -> None:
        """library_from takes the bytes the edge read (a file or stdin) and the name to show."""
        from_bytes = library_from(CLINIC.read_bytes(), "stdin")
        from_file = load_library(CLINIC)
        assert from_bytes["dakwar-test"].library.path == "stdin"
        assert from_bytes["crps"].protocol == from_file["crps"].protocol
        assert from_bytes["crps"].library.sha256 == from_file["crps"].library.sha256
        assert set(library_from(None)) == set(load_library())
        with pytest.raises(ConfigError, match="^stdin: not valid TOML"):
            library_from(b"[[protocol", "stdin")


class TestValidationErrors:
    """Every invalid file stops with a message naming the file and the field (exit 5)."""

    def test_minimal_file_is_valid(self) -> None:
        load_text(MINIMAL)

    @pytest.mark.parametrize(
        ("old", "new", "location", "message"),
        [
            (
                'kind = "timed"',
                'kind = "timed"\ncolour = "red"',
                "protocol[0](p).phases[0].colour",
                "unknown key",
            ),
            ('dose = "0.5 mg/kg"', 'dose = "0.5"', "protocol[0](p).phases[0].dose", "has no unit"),
            ('dose = "0.5 mg/kg"', "dose = 0.5", "protocol[0](p).phases[0].dose", "as a string"),
            (
                'dose = "0.5 mg/kg"',
                'dose = "0.5 mL"',
                "protocol[0](p).phases[0].dose",
                "not a dose",
            ),
            ('dose = "0.5 mg/kg"', 'dose = "0,5 mg/kg"', "protocol[0](p).phases[0].dose", "comma"),
            (
                'evidence = "HIGH"\n\n[protocol.series]',
                'evidence = "NOT CONFIRMED"\n\n[protocol.series]',
                "protocol[0](p).phases[0].evidence",
                "Input should be",
            ),
            (
                'source = "Singh 2016"\nevidence = "HIGH"\n\n[protocol.series]',
                'evidence = "HIGH"\n\n[protocol.series]',
                "protocol[0](p).phases[0].source",
                "Field required",
            ),
            ("per_week = [2, 3]", "per_week = [3, 2]", "protocol[0](p).series", "per_week"),
            (
                'kind = "timed"',
                'kind = "rate"',
                "protocol[0](p).phases[0]",
                "rate phase needs a rate",
            ),
            (
                'category = "psychiatric"',
                'category = "dermatology"',
                "protocol[0](p).category",
                "Input should be",
            ),
            ('id = "p"', 'id = "P Q"', "protocol[0](P Q).id", "String should match pattern"),
            (
                'final_volume = "100 mL"',
                'final_volume = "100 mg"',
                "protocol[0](p).preparation.final_volume",
                "not a volume",
            ),
        ],
    )
    def test_names_file_and_field(self, old: str, new: str, location: str, message: str) -> None:
        text = MINIMAL.replace(old, new, 1)
        assert text != MINIMAL
        with pytest.raises(ConfigError) as info:
            load_text(text)
        error = info.value
        assert error.path == "clinic.toml"
        assert error.location == location
        assert message in str(error)
        assert str(error).startswith(f"clinic.toml: {location}: ")
        assert "\n" not in str(error)

    def test_duplicate_id(self) -> None:
        body = MINIMAL.split("[[protocol]]", 1)[1]
        with pytest.raises(ConfigError, match='protocol id "p" appears twice'):
            load_text(MINIMAL + "\n[[protocol]]" + body)

    def test_iv_without_preparation(self) -> None:
        text = MINIMAL.split("[protocol.preparation]")[0]
        with pytest.raises(ConfigError, match="needs a \\[preparation\\] final_volume"):
            load_text(text)

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            (b"\xff\xfe[\x00l\x00", "not UTF-8"),
            (b"[library\nname=", "not valid TOML"),
            (b"", "library: Field required"),
            (b"[library]\nname = 1", "library.name"),
            (MINIMAL.replace('name = "t"', 'name = "t"\nname = "u"').encode(), "not valid TOML"),
        ],
    )
    def test_broken_files(self, data: bytes, message: str) -> None:
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_file(data, "clinic.toml")
