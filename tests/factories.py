"""Small builders shared by the tests: protocol entries and sessions from literal phases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ketadose.dosing import DoseRequest, session_dose
from ketadose.limits import LimitLibrary, load_library
from ketadose.models import DosedSession, LibraryRef, Patient
from ketadose.protocols import Protocol, ProtocolEntry

ROOT = Path(__file__).resolve().parents[1]
TEST_LIMITS = ROOT / "tests" / "data" / "limits.toml"
REF = LibraryRef(name="t", version="1", sha256="0" * 64, approved=True, path="t.toml")
SRC = {"source": "test source", "evidence": "HIGH"}

TIMED = {"kind": "timed", "dose": "0.5 mg/kg", "duration": "40 min"}
CRPS = {"kind": "rate", "rate": "0.35 mg/kg/h", "duration": "4 h", "cap": "25 mg/h"}
DAKWAR = (
    {"kind": "bolus", "dose": "0.11 mg/kg", "duration": "2 min"},
    {"kind": "timed", "dose": "0.6 mg/kg", "duration": "50 min"},
)


def protocol(
    *phases: dict[str, Any],
    route: str = "iv",
    bag: str = "100 mL",
    protocol_id: str = "t",
    **extra: Any,
) -> ProtocolEntry:
    """A protocol entry from literal phase tables (sources filled in); ``extra`` adds fields."""
    data: dict[str, Any] = {
        "id": protocol_id,
        "name": protocol_id.upper(),
        "category": "pain",
        "route": route,
        "summary": "s",
        "references": ["r"],
        "phases": [{**SRC, **phase} for phase in phases],
        "series": {"sessions": 6, "per_week": [2, 3], **SRC},
    }
    if route == "iv":
        data["preparation"] = {"final_volume": bag, **SRC}
    data.update(extra)
    return ProtocolEntry(Protocol.model_validate(data), REF)


def dose_for(entry: ProtocolEntry, weight: float | None = 80.0, **request: Any) -> DosedSession:
    """The session for a patient of this weight (other DoseRequest fields as keywords)."""
    return session_dose(entry, DoseRequest(patient=Patient(weight_kg=weight), **request))


def limits_library() -> LimitLibrary:
    """The round-numbered test limit library (tests/data/limits.toml)."""
    return load_library(TEST_LIMITS)


#: The protocol ids the shipped library must have (issue 2).
REQUIRED_IDS = (
    "depression",
    "bipolar-depression",
    "suicidal-ideation",
    "ptsd",
    "ocd",
    "social-anxiety",
    "alcohol-use-disorder",
    "cocaine-use-disorder",
    "depression-im",
    "anxiety-sc",
    "depression-sc",
    "esketamine-nasal",
    "crps",
    "chronic-pain",
    "neuropathic-pain",
    "fibromyalgia",
    "migraine",
    "acute-pain",
)


#: Wide plausibility sides for every parameter a limit library must limit (limits.REQUIRED,
#: and limits.REQUIRED_BY_ROUTE for the shipped routes), so a test library written for one
#: parameter is still a valid library. A string is a quantity; an int is a count.
WIDE: dict[tuple[str, str], dict[str, str | int]] = {
    ("session", "total_dose_per_kg"): {"upper_hard": "100 mg/kg"},
    ("session", "total_dose"): {"upper_hard": "10000 mg"},
    ("session", "rate_per_kg"): {"upper_hard": "100 mg/kg/h"},
    ("session", "rate"): {"upper_hard": "10000 mg/h"},
    ("session", "bolus_dose_per_kg"): {"upper_hard": "100 mg/kg"},
    ("session", "final_concentration"): {"upper_hard": "100 mg/mL"},
    ("session", "pump_rate"): {"upper_hard": "9999 mL/h"},
    ("session", "infusion_duration"): {"upper_hard": "24 h"},
    ("session", "injection_volume"): {"upper_hard": "100 mL"},
    ("session", "liquid_volume"): {"upper_hard": "1000 mL"},
    ("session", "tablet_count"): {"upper_hard": 100},
    ("patient", "weight"): {"lower_hard": "1 kg", "upper_hard": "1000 kg"},
    ("patient", "age"): {"lower_hard": "1 y", "upper_hard": "150 y"},
    **{
        (section, parameter): dict[str, str | int](sides)
        for section in ("vitals_pre", "vitals_during")
        for parameter, sides in (
            ("systolic", {"lower_hard": "40 mmHg", "upper_hard": "300 mmHg"}),
            ("diastolic", {"lower_hard": "20 mmHg", "upper_hard": "200 mmHg"}),
            ("heart_rate", {"lower_hard": "20 bpm", "upper_hard": "250 bpm"}),
            ("spo2", {"lower_hard": "50%"}),
        )
    },
}


def complete(text: str) -> str:
    """A test limit library with wide defaults for every required parameter it leaves out."""
    blocks = [text.rstrip("\n") + "\n"]
    for (section, parameter), sides in WIDE.items():
        if f"[profiles.default.{section}.{parameter}]" in text:
            continue
        lines = "".join(
            f"{side} = {value}\n" if isinstance(value, int) else f'{side} = "{value}"\n'
            for side, value in sides.items()
        )
        blocks.append(
            f"\n[profiles.default.{section}.{parameter}]\n{lines}"
            'source = "wide test bound"\nevidence = "SITE-POLICY"\n'
        )
    return "".join(blocks)
