"""Small builders shared by the tests: protocol entries and sessions from literal phases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ketadose.dosing import DoseRequest, session_dose
from ketadose.limits import LimitLibrary, load_library
from ketadose.models import LibraryRef, Patient, SessionDose
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


def dose_for(entry: ProtocolEntry, weight: float | None = 80.0, **request: Any) -> SessionDose:
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
    "esketamine-nasal",
    "crps",
    "chronic-pain",
    "neuropathic-pain",
    "fibromyalgia",
    "migraine",
    "acute-pain",
)
