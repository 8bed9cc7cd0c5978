"""ketadose.records: an audit entry built from a command's inputs and findings."""

from __future__ import annotations

import json
from datetime import datetime
from enum import Enum
from pathlib import Path
from zoneinfo import ZoneInfo

from ketadose.models import Finding, Severity
from ketadose.records import AuditEntry, json_value

AT = datetime(2026, 11, 30, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))


class Colour(Enum):
    RED = "red"


class TestAuditEntry:
    """Inputs as JSON values (None left out), findings as JSON, the rest as given."""

    def test_of(self) -> None:
        finding = Finding(code="dose.max", severity=Severity.SOFT, message="over 0.75 mg/kg")
        entry = AuditEntry.of(
            at=AT,
            user="nurse",
            command="dose",
            patient_id="P1",
            inputs={"weight": "80kg", "with": ["lorazepam:12"], "force": False, "dose": None},
            findings=[finding],
            status="soft",
            override_reason="why",
            library_sha256="ab" * 32,
        )
        assert json.loads(entry.inputs_json) == {
            "weight": "80kg",
            "with": ["lorazepam:12"],
            "force": False,
        }
        (found,) = json.loads(entry.findings_json)
        assert (found["code"], found["severity"], found["message"]) == (
            "dose.max",
            "soft",
            "over 0.75 mg/kg",
        )
        assert (entry.at, entry.user, entry.command, entry.patient_id) == (
            AT,
            "nurse",
            "dose",
            "P1",
        )
        assert (entry.status, entry.override_reason, entry.id) == ("soft", "why", None)
        assert entry.library_sha256 == "ab" * 32

    def test_json_values(self) -> None:
        assert json_value(["lorazepam:12"]) == ["lorazepam:12"]
        assert json_value(False) is False
        assert json_value(80.5) == 80.5
        assert json_value(Colour.RED) == "red"
        assert json_value(Path("x/limits.toml")) == "x/limits.toml"
        assert json_value(("b", "a")) == ["b", "a"]
        assert json_value({"b", "a"}) == ["a", "b"]
        assert json_value({"ok": 1, 2: [Colour.RED]}) == {"ok": 1, "2": ["red"]}
